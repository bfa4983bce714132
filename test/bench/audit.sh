#!/usr/bin/env bash
# Audit ingest benchmark: keyceremony beside its peers on the same generated
# CloudTrail tree, in the same run: DuckDB (test/bench/peers, read_json on
# all cores; skipped with a message when node or npm is missing) and the
# sqlite3 shell's JSON functions. Prints wall and CPU time, peak RSS and
# database size side by side, then on our database: the usage and rotation
# reports as the CLI writes them (PDF + CSV + JSON), a per-key-per-month
# count (ours from the rollups, DuckDB's from its table), and the time to
# add one more day of events to the database (incremental ingest).
#
#   bash test/bench/audit.sh                   # 1,000,000 KMS events, 7 days
#   KC_BENCH_EVENTS=200000 bash test/bench/audit.sh
#   make bench-10m                             # 10,000,000 events, 90 days
#
# The trees are generated once into $KC_BENCH_CACHE (default
# ~/.cache/keyceremony-bench), never into the repository. Needs sqlite3,
# GNU time (/usr/bin/time) and gzip; KC_BENCH_SQLITE=0 skips the sqlite3
# shell (make bench-10m does: it takes over ten minutes at 10M), and
# KC_BENCH_DUCKDB=0 skips DuckDB (at 10M it peaks near 20 GB).
set -euo pipefail
cd "$(dirname "$0")/../.."

EVENTS=${KC_BENCH_EVENTS:-1000000}
DAYS=${KC_BENCH_DAYS:-7}
CACHE=${KC_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/keyceremony-bench}
if [ "$DAYS" = 7 ]; then TREE=$CACHE/cloudtrail-$EVENTS; else TREE=$CACHE/cloudtrail-$EVENTS-${DAYS}d; fi
START=2025-03-01
END=$(date -u -d "$START + $DAYS days" +%F)
# One more day: KC_BENCH_DAY_EVENTS events (default the tree's per day).
DAY_EVENTS=${KC_BENCH_DAY_EVENTS:-$((EVENTS / DAYS))}
DAYTREE=$TREE-next-day-$DAY_EVENTS
WORK=$(mktemp -d "${KC_BENCH_WORK:-${TMPDIR:-/tmp}}/kc-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

for tool in sqlite3 gzip; do
  command -v "$tool" >/dev/null || { echo "audit bench: $tool is required (make deps-test)" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "audit bench: GNU time (/usr/bin/time) is required" >&2; exit 1; }

mkdir -p "$CACHE"
if [ ! -f "$TREE/stats.json" ]; then
  echo "generating $EVENTS KMS events over $DAYS days into $TREE (once)..."
  rm -rf "$TREE"
  go run ./test/cloudtrailgen/cmd/cloudtrailgen -out "$TREE" -events "$EVENTS" -days "$DAYS" > "$TREE.stats.tmp"
  mv "$TREE.stats.tmp" "$TREE/stats.json"
fi
if [ ! -f "$DAYTREE/stats.json" ]; then
  echo "generating the day after ($DAY_EVENTS KMS events) into $DAYTREE (once)..."
  rm -rf "$DAYTREE"
  go run ./test/cloudtrailgen/cmd/cloudtrailgen -out "$DAYTREE" -events "$DAY_EVENTS" -days 1 -start "$END" -seed 2 > "$DAYTREE.stats.tmp"
  mv "$DAYTREE.stats.tmp" "$DAYTREE/stats.json"
fi
UNIQUE=$(sed -n 's/.*"KMSEvents": \([0-9]*\).*/\1/p' "$TREE/stats.json")
GZBYTES=$(du -sb "$TREE/AWSLogs" | cut -f1)
NFILES=$(find "$TREE/AWSLogs" -name '*.json.gz' | wc -l)

# Our CLI: the app/cli test binary runs the same code as `keyceremony
# audit` without linking Fyne, and is always built from this tree.
go test -c -o "$WORK/kc-audit" ./app/cli
KC=(env KC_AUDIT_CLI_CHILD=1 "$WORK/kc-audit"); KC_DESC="app/cli test binary (KC_AUDIT_CLI_CHILD=1), same code as keyceremony"

# timed LABEL CMD...: runs CMD under GNU time, sets SECS, CPU (user+system
# seconds) and RSS_KB.
timed() {
  local label=$1; shift
  /usr/bin/time -v -o "$WORK/$label.time" "$@" > "$WORK/$label.out" 2> "$WORK/$label.err" || {
    echo "audit bench: $label failed:" >&2; cat "$WORK/$label.err" >&2; exit 1; }
  SECS=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,a,":"); s=0; for(i=1;i<=n;i++) s=s*60+a[i]; print s}' "$WORK/$label.time")
  RSS_KB=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$WORK/$label.time")
  CPU=$(awk -F': ' '/User time|System time/ {s+=$2} END {print s}' "$WORK/$label.time")
}

echo "tree: $TREE ($NFILES files, $((GZBYTES/1048576)) MiB gzipped, $UNIQUE unique KMS events, $START to $END)"
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
sync

# --- keyceremony -------------------------------------------------------------
timed project "${KC[@]}" audit ingest --no-progress --json --db "$WORK/project.db" "$TREE/AWSLogs"
P_SECS=$SECS; P_RSS=$RSS_KB; P_CPU=$CPU
P_NEW=$(sed -n 's/.*"kms_events_new": \([0-9]*\).*/\1/p' "$WORK/project.out")
P_SIZE=$(stat -c %s "$WORK/project.db")

# --- DuckDB peer ---------------------------------------------------------------
PEER=test/bench/peers/peer_duckdb_ingest.sh
D_SECS=; D_ROWS=0
if [ "${KC_BENCH_DUCKDB:-1}" = 0 ]; then
  echo "DuckDB peer skipped (KC_BENCH_DUCKDB=0)"
elif ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "DuckDB peer skipped: node and npm are needed (apt-get install nodejs npm)"
else
  bash "$PEER" --version > "$WORK/duck.version" 2>&1 || { echo "audit bench: installing the DuckDB peer failed:" >&2; cat "$WORK/duck.version" >&2; exit 1; }
  timed duckdb bash "$PEER" "$TREE/AWSLogs" "$WORK/duck.db"
  D_SECS=$SECS; D_RSS=$RSS_KB; D_CPU=$CPU
  D_ROWS=$(grep -o '[0-9][0-9]*' "$WORK/duckdb.out" | tail -1)
  D_SIZE=$(stat -c %s "$WORK/duck.db")
fi

# --- baseline: gunzip the tree, then the sqlite3 shell's JSON functions ------
B_SECS=; B_ROWS=0
if [ "${KC_BENCH_SQLITE:-1}" = 0 ]; then
  echo "sqlite3 shell skipped (KC_BENCH_SQLITE=0)"
else
timed gunzip bash -c "cp -r '$TREE/AWSLogs' '$WORK/plain' && gunzip -r '$WORK/plain'"
G_SECS=$SECS; G_RSS=$RSS_KB; G_CPU=$CPU
{
  cat <<'SQL'
CREATE TABLE events (
  event_id TEXT PRIMARY KEY, event_time TEXT, event_name TEXT, category TEXT, read_only INTEGER,
  aws_region TEXT, account TEXT, principal_arn TEXT, principal_type TEXT, invoked_by TEXT,
  source_ip TEXT, user_agent TEXT, key_arn TEXT, error_code TEXT, error_message TEXT, raw TEXT);
CREATE INDEX events_key_time ON events(key_arn, event_time);
CREATE INDEX events_principal_time ON events(principal_arn, event_time);
CREATE INDEX events_name_time ON events(event_name, event_time);
BEGIN;
SQL
  find "$WORK/plain" -name '*.json' | sort | while read -r f; do
    cat <<SQL
INSERT OR IGNORE INTO events SELECT
  j.value->>'eventID', j.value->>'eventTime', j.value->>'eventName',
  CASE WHEN j.value->>'eventType' = 'AwsServiceEvent' THEN 'service'
       WHEN j.value->>'eventName' IN ('Decrypt','Encrypt','ReEncrypt','GenerateDataKey','GenerateDataKeyWithoutPlaintext',
         'GenerateDataKeyPair','GenerateDataKeyPairWithoutPlaintext','GenerateMac','VerifyMac','Sign','Verify',
         'GenerateRandom','DeriveSharedSecret','GetPublicKey') THEN 'data' ELSE 'management' END,
  j.value->>'readOnly', j.value->>'awsRegion', coalesce(j.value->>'recipientAccountId', j.value->>'$.userIdentity.accountId'),
  j.value->>'$.userIdentity.arn', j.value->>'$.userIdentity.type', j.value->>'$.userIdentity.invokedBy',
  j.value->>'sourceIPAddress', j.value->>'userAgent',
  coalesce(j.value->>'$.resources[0].ARN', j.value->>'$.requestParameters.keyId'),
  j.value->>'errorCode', j.value->>'errorMessage', j.value
FROM json_each(CAST(readfile('$f') AS TEXT), '\$.Records') AS j
WHERE j.value->>'eventSource' = 'kms.amazonaws.com';
SQL
  done
  echo "COMMIT;"
} > "$WORK/load.sql"
timed baseline sqlite3 "$WORK/baseline.db" ".read $WORK/load.sql"
B_SECS=$(awk -v a="$G_SECS" -v b="$SECS" 'BEGIN{print a+b}'); B_RSS=$(( RSS_KB > G_RSS ? RSS_KB : G_RSS ))
B_CPU=$(awk -v a="$G_CPU" -v b="$CPU" 'BEGIN{print a+b}')
B_ROWS=$(sqlite3 "$WORK/baseline.db" 'SELECT count(*) FROM events')
B_SIZE=$(stat -c %s "$WORK/baseline.db")
rm -rf "$WORK/plain"
fi

# --- side by side -------------------------------------------------------------
# CPU time is printed too: on a machine shared with other work the wall
# times of the parallel sides suffer more than the single-threaded
# baseline's, and the CPU seconds say how much work each side did.
col() { if [ -n "$1" ]; then printf "%16s" "$2"; else printf "%16s" "-"; fi; }
row() { # LABEL OURS DUCK SQLITE
  printf "%-28s %16s" "$1" "$2"; col "$D_SECS" "$3"; col "$B_SECS" "$4"; echo; }
f1() { awk -v v="$1" -v d="${2:-1}" 'BEGIN{printf "%.1f", v/d}'; }
echo
printf "%-28s %16s %16s %16s\n" "" "keyceremony" "DuckDB peer" "sqlite3 shell"
row "KMS events stored" "$P_NEW" "$D_ROWS" "$B_ROWS"
row "wall time (s)" "$(f1 "$P_SECS")" "$(f1 "${D_SECS:-0}")" "$(f1 "${B_SECS:-0}")"
row "CPU time, user+system (s)" "$(f1 "$P_CPU")" "$(f1 "${D_CPU:-0}")" "$(f1 "${B_CPU:-0}")"
row "peak RSS (MiB)" "$(f1 "$P_RSS" 1024)" "$(f1 "${D_RSS:-0}" 1024)" "$(f1 "${B_RSS:-0}" 1024)"
row "database size (MiB)" "$(f1 "$P_SIZE" 1048576)" "$(f1 "${D_SIZE:-0}" 1048576)" "$(f1 "${B_SIZE:-0}" 1048576)"
if [ -n "$D_SECS" ]; then
  awk -v p="$P_SECS" -v d="$D_SECS" -v ps="$P_SIZE" -v ds="$D_SIZE" 'BEGIN{printf "keyceremony against DuckDB: %.2fx its speed (%.2f of its wall time), %.2f of its file size\n", d/p, p/d, ps/ds}'
fi
if [ -n "$B_SECS" ]; then
  awk -v p="$P_SECS" -v b="$B_SECS" 'BEGIN{printf "keyceremony against the sqlite3 shell: %.2fx its speed\n", b/p}'
  echo "(sqlite3 time = gunzip $(f1 "$G_SECS") s + load; peak RSS = max of the two)"
fi
echo "load average after the ingests: $(cut -d' ' -f1-3 /proc/loadavg)"
# The growth from 1M to 10M (issue 18: linear, at most 10.5x): each run
# keeps its ingest figures; the 10M run reads those of the last 1M run
# (make bench runs the two one after the other).
FIG_DIR=${XDG_CACHE_HOME:-$HOME/.cache}/keyceremony-bench
mkdir -p "$FIG_DIR"
echo "$P_SECS $P_CPU $P_RSS $P_SIZE $(date -u +%FT%TZ)" > "$FIG_DIR/ingest-$EVENTS.txt"
if [ "$EVENTS" = 10000000 ] && [ -f "$FIG_DIR/ingest-1000000.txt" ]; then
  read -r S1 C1 R1 Z1 W1 < "$FIG_DIR/ingest-1000000.txt"
  awk -v s="$P_SECS" -v s1="$S1" -v c="$P_CPU" -v c1="$C1" -v z="$P_SIZE" -v z1="$Z1" -v w="$W1" \
    'BEGIN{printf "10M against the 1M run of %s: wall %.1fx, CPU %.1fx, database %.1fx (linear: 10x)\n", w, s/s1, c/c1, z/z1}'
fi

# --- on our database: reports, a count, one more day ---------------------------
echo
printf "%-58s %10s %10s %14s\n" "on the keyceremony database" "wall (s)" "CPU (s)" "peak RSS (MiB)"
for kind in usage rotation; do
  timed "report-$kind" "${KC[@]}" audit report "$kind" --db "$WORK/project.db" --from "$START" --to "$END" \
    -o "$WORK/$kind.pdf" --csv "$WORK/$kind.csv" --json "$WORK/$kind.json" --quiet
  printf "%-58s %10.2f %10.2f %14.1f\n" "$kind report, $START to $END (PDF+CSV+JSON)" "$SECS" "$CPU" "$(f1 "$RSS_KB" 1024)"
done
# The per-key-per-month count, from the rollups (sqlite3 shell, engine time).
KEYMONTH="SELECT key, strftime('%Y-%m', day*86400, 'unixepoch') AS m, sum(events) FROM rollups WHERE key <> 0 GROUP BY key, m;"
T=$(printf '.timer on\n%s\n' "$KEYMONTH" | sqlite3 -readonly "$WORK/project.db" | awk '/Run Time/ {print $4}')
printf "%-58s %10s\n" "per-key-per-month count (rollups, sqlite3)" "$T"
if [ -n "$D_SECS" ]; then
  DT=$(NODE_PATH=${DUCKPEER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/duckdb-peer}/node_modules node test/bench/peers/duckdb-peer/query.js "$WORK/duck.db" \
    "SELECT key_arn, date_trunc('month', event_time) AS m, count(*) FROM events WHERE key_arn IS NOT NULL GROUP BY ALL" 2>&1 >/dev/null | awk '/Run Time/ {print $3}')
  printf "%-58s %10s\n" "per-key-per-month count (DuckDB, its table)" "$DT"
fi
DAYN=$(sed -n 's/.*"KMSEvents": \([0-9]*\).*/\1/p' "$DAYTREE/stats.json")
timed nextday "${KC[@]}" audit ingest --no-progress --json --db "$WORK/project.db" "$DAYTREE/AWSLogs"
I_NEW=$(sed -n 's/.*"kms_events_new": \([0-9]*\).*/\1/p' "$WORK/nextday.out")
printf "%-58s %10.2f %10.2f %14.1f\n" "one more day ($I_NEW new events of $DAYN)" "$SECS" "$CPU" "$(f1 "$RSS_KB" 1024)"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "keyceremony: $KC_DESC audit ingest --no-progress --json --db DB $TREE/AWSLogs"
echo "DuckDB:      $PEER $TREE/AWSLogs DB (read_json over the gz tree, deduplicated, raw JSON kept)"
echo "sqlite3:     cp -r + gunzip -r, then sqlite3 DB '.read load.sql' (one INSERT OR IGNORE ... json_each(readfile(f), '\$.Records') per file, one transaction)"
for n in "$P_NEW" "$D_ROWS" "$B_ROWS"; do
  if [ "$n" != 0 ] && [ "$n" != "$UNIQUE" ]; then
    echo "audit bench: event counts differ from the generator's ($UNIQUE): ours $P_NEW, DuckDB $D_ROWS, sqlite3 $B_ROWS" >&2; exit 1
  fi
done
