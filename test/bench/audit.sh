#!/usr/bin/env bash
# Audit ingest benchmark: keyceremony vs. a sqlite3-shell baseline on the same
# generated CloudTrail tree, in the same run. Prints events/s, database size
# and peak RSS side by side.
#
#   bash test/bench/audit.sh                   # 1,000,000 KMS events
#   KC_BENCH_EVENTS=200000 bash test/bench/audit.sh
#
# The tree is generated once into $KC_BENCH_CACHE (default
# ~/.cache/keyceremony-bench), never into the repository. Needs sqlite3,
# GNU time (/usr/bin/time) and gzip.
set -euo pipefail
cd "$(dirname "$0")/../.."

EVENTS=${KC_BENCH_EVENTS:-1000000}
CACHE=${KC_BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/keyceremony-bench}
TREE=$CACHE/cloudtrail-$EVENTS
WORK=$(mktemp -d "${TMPDIR:-/tmp}/kc-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

for tool in sqlite3 gzip; do
  command -v "$tool" >/dev/null || { echo "audit bench: $tool is required (make deps-test)" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "audit bench: GNU time (/usr/bin/time) is required" >&2; exit 1; }

mkdir -p "$CACHE"
if [ ! -f "$TREE/stats.json" ]; then
  echo "generating $EVENTS KMS events into $TREE (once)..."
  rm -rf "$TREE"
  go run ./test/cloudtrailgen/cmd/cloudtrailgen -out "$TREE" -events "$EVENTS" > "$TREE.stats.tmp"
  mv "$TREE.stats.tmp" "$TREE/stats.json"
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

echo "tree: $TREE ($NFILES files, $((GZBYTES/1048576)) MiB gzipped, $UNIQUE unique KMS events)"
sync

# --- keyceremony -------------------------------------------------------------
timed project "${KC[@]}" audit ingest --no-progress --json --db "$WORK/project.db" "$TREE/AWSLogs"
P_SECS=$SECS; P_RSS=$RSS_KB; P_CPU=$CPU
P_NEW=$(sed -n 's/.*"kms_events_new": \([0-9]*\).*/\1/p' "$WORK/project.out")
P_SIZE=$(stat -c %s "$WORK/project.db")

# --- baseline: gunzip the tree, then the sqlite3 shell's JSON functions ------
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

# --- report ------------------------------------------------------------------
# CPU time is printed too: on a machine shared with other work the wall
# times of the parallel side suffer more than the single-threaded
# baseline's, and the CPU seconds say how much work each side did.
awk -v ps="$P_SECS" -v pn="$P_NEW" -v pz="$P_SIZE" -v pr="$P_RSS" -v pc="$P_CPU" \
    -v bs="$B_SECS" -v bn="$B_ROWS" -v bz="$B_SIZE" -v br="$B_RSS" -v gs="$G_SECS" -v bc="$B_CPU" \
    -v load="$(cut -d' ' -f1-3 /proc/loadavg)" 'BEGIN {
  printf "\n%-28s %16s %16s %10s\n", "", "keyceremony", "sqlite3 baseline", "ratio"
  printf "%-28s %16d %16d\n", "KMS events stored", pn, bn
  printf "%-28s %16.1f %16.1f %9.2fx\n", "wall time (s)", ps, bs, bs/ps
  printf "%-28s %16.1f %16.1f %9.2fx\n", "CPU time, user+system (s)", pc, bc, bc/pc
  printf "%-28s %16.0f %16.0f %9.2fx\n", "events/s", pn/ps, bn/bs, (pn/ps)/(bn/bs)
  printf "%-28s %16.1f %16.1f %9.2fx\n", "database size (MiB)", pz/1048576, bz/1048576, pz/bz
  printf "%-28s %16.1f %16.1f\n", "peak RSS (MiB)", pr/1024, br/1024
  printf "(baseline time = gunzip %.1f s + sqlite3 load %.1f s; peak RSS = max of the two; load average at the end %s)\n", gs, bs-gs, load
}'
echo "keyceremony: $KC_DESC audit ingest --no-progress --json --db DB $TREE/AWSLogs"
echo "baseline:    cp -r + gunzip -r, then sqlite3 DB '.read load.sql' (one INSERT OR IGNORE ... json_each(readfile(f), '\$.Records') per file, one transaction)"
if [ "$P_NEW" != "$UNIQUE" ] || [ "$B_ROWS" != "$UNIQUE" ]; then
  echo "audit bench: event counts differ from the generator's ($UNIQUE)" >&2; exit 1
fi
