#!/usr/bin/env bash
# Behaviour check for refactors of the audit half: runs the same audit
# commands with two keyceremony binaries on the same generated CloudTrail
# trail (and a key inventory) and compares every output byte for byte.
#
#   go build -o /tmp/kc-before ./app        # on the commit before the change
#   go build -o /tmp/kc-after ./app         # on the change
#   bash test/compare/audit.sh /tmp/kc-before /tmp/kc-after [EVENTS]
#
# Each binary ingests the trail into a fresh database at the same path, then
# prints the ingest summary, coverage, keys, event pages, the export of the
# original records, raw records, and both reports (PDF as text, CSV, JSON)
# with two sets of options. The second binary also reports on the first
# one's database, which separates a change in the reports from a change in
# what the ingest stored. Only what differs between two runs of the same
# binary is masked: the ingest's elapsed time, the generation time of a
# report, the ingest time of each file (in the report's provenance) and the
# seconds a report took. Exit status 0 when everything is identical.
#
# The trail (default 100,000 KMS events, 7 days) is generated once into
# $KC_COMPARE_DIR (default /tmp/kc-audit-compare). Needs jq and pdftotext.
set -euo pipefail
cd "$(dirname "$0")/../.."

[ $# -ge 2 ] || { echo "usage: $0 BINARY_BEFORE BINARY_AFTER [EVENTS]" >&2; exit 2; }
A=$(realpath "$1"); B=$(realpath "$2"); EVENTS=${3:-100000}
DIR=${KC_COMPARE_DIR:-/tmp/kc-audit-compare}
TRAIL=$DIR/trail-$EVENTS
for tool in jq pdftotext; do
  command -v "$tool" >/dev/null || { echo "compare: $tool is required" >&2; exit 1; }
done

mkdir -p "$DIR"
if [ ! -f "$TRAIL/stats.json" ]; then
  echo "generating $EVENTS KMS events into $TRAIL (once)..."
  rm -rf "$TRAIL"
  go run ./test/cloudtrailgen/cmd/cloudtrailgen -out "$TRAIL" -events "$EVENTS" > "$TRAIL.stats.tmp"
  mv "$TRAIL.stats.tmp" "$TRAIL/stats.json"
fi

# run TAG BIN: every command's output under $DIR/out-TAG.
run() {
  local tag=$1 bin=$2 db=$DIR/db/audit.db out=$DIR/out-$1
  rm -rf "$DIR/db" "$out"; mkdir -p "$DIR/db" "$out"
  local kc=(env LANGUAGE=en "$bin" audit)
  "${kc[@]}" ingest --no-progress --json --workers 1 --db "$db" "$TRAIL/AWSLogs" | jq 'del(.elapsed_ns)' > "$out/ingest.json"
  # A key inventory for three of the trail's keys (combined format) and a
  # list-aliases output: the ingest's inventory path and the reports' use of it.
  mapfile -t arns < <("${kc[@]}" keys --db "$db" --json | jq -r 'sort_by(-.Events, .ARN) | .[0:3][].ARN')
  jq -n --arg a "${arns[0]}" --arg b "${arns[1]}" --arg c "${arns[2]}" '
    def id: split("/")[1];
    {Inventory: {GeneratedAt: "2025-03-05T12:00:00Z", Account: ($a | split(":")[4]), Region: ($a | split(":")[3]), Keys: [
      {KeyMetadata: {Arn: $a, KeyId: ($a|id), KeySpec: "SYMMETRIC_DEFAULT", Origin: "AWS_KMS", KeyManager: "CUSTOMER", KeyState: "Enabled", Enabled: true, CreationDate: "2023-01-10T00:00:00Z"},
       Rotation: {KeyRotationEnabled: true, RotationPeriodInDays: 180, NextRotationDate: "2025-04-01T00:00:00Z"},
       Aliases: [{AliasName: "alias/inventory-a", AliasArn: ($a | sub(":key/.*"; ":alias/inventory-a"))}],
       KeyLastUsage: {Timestamp: "2025-03-04T10:00:00Z", Operation: "Decrypt"}},
      {KeyMetadata: {Arn: $b, KeyId: ($b|id), KeySpec: "SYMMETRIC_DEFAULT", Origin: "EXTERNAL", KeyManager: "CUSTOMER", KeyState: "PendingDeletion", Enabled: false,
                     CreationDate: 1673308800, DeletionDate: "2025-03-20T00:00:00Z", ValidTo: "2025-03-15T00:00:00Z", ExpirationModel: "KEY_MATERIAL_EXPIRES"}},
      {KeyMetadata: {Arn: $c, KeyId: ($c|id), KeySpec: "HMAC_256", Origin: "AWS_KMS", KeyManager: "CUSTOMER", KeyState: "Enabled", Enabled: true}}]}}' > "$DIR/db/inventory.json"
  jq -n --arg a "${arns[2]}" '{Aliases: [{AliasName: "alias/listed", AliasArn: ($a | sub(":key/.*"; ":alias/listed")), TargetKeyId: ($a | split("/")[1])}]}' > "$DIR/db/aliases.json"
  "${kc[@]}" ingest --no-progress --json --workers 1 --db "$db" "$DIR/db/inventory.json" "$DIR/db/aliases.json" | jq 'del(.elapsed_ns)' > "$out/ingest-inventory.json"
  "${kc[@]}" ingest --no-progress --db "$db" "$TRAIL/AWSLogs" | sed 's/^Time: .*/Time: (masked)/' > "$out/ingest-again.txt"
  "${kc[@]}" coverage --db "$db" > "$out/coverage.txt"
  "${kc[@]}" coverage --db "$db" --json > "$out/coverage.json"
  "${kc[@]}" keys --db "$db" > "$out/keys.txt"
  "${kc[@]}" keys --db "$db" --json > "$out/keys.json"
  "${kc[@]}" events --db "$db" --count > "$out/events-count.txt"
  "${kc[@]}" events --db "$db" --limit 300 > "$out/events-newest.txt"
  "${kc[@]}" events --db "$db" --oldest --limit 300 --json > "$out/events-oldest.json"
  local next; next=$(jq -r .next "$out/events-oldest.json")
  "${kc[@]}" events --db "$db" --oldest --limit 300 --after "$next" --json > "$out/events-oldest-2.json"
  "${kc[@]}" events --db "$db" --errors --from 2025-03-02 --to 2025-03-04 --limit 2000 --json > "$out/events-errors.json"
  "${kc[@]}" events --db "$db" --name Decrypt --key "${arns[0]}" --count > "$out/events-decrypt-count.txt"
  "${kc[@]}" events --db "$db" --alias alias/inventory-a --limit 50 > "$out/events-alias.txt"
  "${kc[@]}" export --db "$db" -o "$out/export.json" 2> "$out/export.err"
  "${kc[@]}" export --db "$db" --account "$(echo "${arns[1]}" | cut -d: -f5)" --region "$(echo "${arns[1]}" | cut -d: -f4)" --from 2025-03-03 -o "$out/export-filtered.json" 2> "$out/export-filtered.err"
  for id in $(jq -r '.events[0:5][].EventID' "$out/events-oldest.json"); do
    "${kc[@]}" raw --db "$db" "$id" >> "$out/raw.txt"
  done
  set +e
  "${kc[@]}" raw --db "$db" no-such-event > "$out/raw-missing.out" 2> "$out/raw-missing.err"; echo "exit $?" >> "$out/raw-missing.err"
  "${kc[@]}" events --db "$db" --from yesterday > "$out/bad-date.out" 2> "$out/bad-date.err"; echo "exit $?" >> "$out/bad-date.err"
  # Usage errors and help: the message and the exit status (in a scratch
  # directory: nothing here may create a file, but if it did).
  rm -rf "$DIR/cwd"; mkdir -p "$DIR/cwd"
  local i=0
  while IFS= read -r line; do
    i=$((i+1))
    eval "set -- $line"
    { echo "\$ keyceremony $line"; (cd "$DIR/cwd" && env LANGUAGE=en "$bin" "$@" 2>&1); echo "exit $?"; } < /dev/null >> "$out/cli.txt"
  done <<'ARGS'
audit
audit nope
audit -h
audit ingest
audit ingest -h
audit ingest --workers x .
audit events --db x.db --from 2025-03-01T00:00:00 --count
audit events --from 2025-13-01
audit raw
audit export -h
audit coverage --bogus
audit keys extra --bogus
audit report
audit report weekly
audit report rotation
audit report rotation -h
audit report rotation --db x.db --from 2025-03-01 --to 2025-03-07
audit report usage --db x.db --from 2025-03-01 --to 2025-03-07 --csv a --json a
audit report usage --db x.db --from 2025-03-01 --to 2025-03-07 --csv a --business-hours 8
audit report rotation --db /nonexistent.db --from 2025-03-01 --to 2025-03-07 --csv /tmp/kc-compare-never.csv
audit fetch extra
audit fetch --s3-prefix p
audit fetch --s3-bucket b
audit fetch -h
audit athena
audit athena --database d --table t --from 2025-03-01 --to 2025-03-02 --output-location http://x
aws inventory
ARGS
  set -e
  reports "$tag" "$bin" "$out"
}

# reports TAG BIN OUT: both reports, two option sets each, on $DIR/db/audit.db.
reports() {
  local bin=$2 out=$DIR/r db=$DIR/db/audit.db
  local kc=(env LANGUAGE=en "$bin" audit report)
  rm -rf "$out"; mkdir -p "$out"
  "${kc[@]}" rotation --db "$db" --from 2025-03-01 --to 2025-03-07 --quiet -o "$out/rotation.pdf" --csv "$out/rotation.csv" --json "$out/rotation.json" > "$out/rotation.out"
  "${kc[@]}" rotation --db "$db" --from 2025-03-02 --to 2025-03-06T12:00:00Z --policy-days 3 --import-max-days 30 --expiry-warn-days 20 \
    --account "$(echo "${arns[1]}" | cut -d: -f5)" --quiet --csv "$out/rotation-policy.csv" --json "$out/rotation-policy.json" > "$out/rotation-policy.out"
  "${kc[@]}" usage --db "$db" --from 2025-03-01 --to 2025-03-07 --quiet -o "$out/usage.pdf" --csv "$out/usage.csv" --json "$out/usage.json" > "$out/usage.out"
  "${kc[@]}" usage --db "$db" --from 2025-03-02 --to 2025-03-05 --tz Europe/Berlin --business-hours 09-17 --business-days Mon-Thu --top 3 \
    --region "$(echo "${arns[0]}" | cut -d: -f4)" --quiet --csv "$out/usage-berlin.csv" --json "$out/usage-berlin.json" > "$out/usage-berlin.out"
  for f in "$out"/*.pdf; do pdftotext -layout "$f" "${f%.pdf}.pdf.txt"; rm "$f"; done
  sed -i -E 's/^(    "generated_at": )"[^"]*"/\1"(masked)"/; s/"ingested_at":"[^"]*"/"ingested_at":"(masked)"/g' "$out"/*.json
  sed -i -E 's/ \([0-9.]+ s\)$/ (masked)/' "$out"/rotation*.out "$out"/usage*.out
  sed -i -E 's/generated [0-9-]+ [0-9:]+Z/generated (masked)/; s/^(Generated +)[0-9-]+ [0-9:]+Z/\1(masked)/; s/[0-9-]{10} [0-9:]{8}Z( +[0-9]+ +[0-9,]+ +[0-9]+)$/(masked)\1/' "$out"/*.pdf.txt
  mv "$out"/* "$3"/
}

run before "$A"
mv "$DIR/db" "$DIR/db-before"
run after "$B"
# The second binary's reports on the first binary's database.
mv "$DIR/db" "$DIR/db-after"; mv "$DIR/db-before" "$DIR/db"
rm -rf "$DIR/out-after-on-before" "$DIR/out-before-reports"; mkdir -p "$DIR/out-after-on-before"
mapfile -t arns < <(env LANGUAGE=en "$B" audit keys --db "$DIR/db/audit.db" --json | jq -r 'sort_by(-.Events, .ARN) | .[0:3][].ARN')
reports after-on-before "$B" "$DIR/out-after-on-before"
mkdir -p "$DIR/out-before-reports"
for f in "$DIR"/out-before/rotation* "$DIR"/out-before/usage*; do cp "$f" "$DIR/out-before-reports/"; done
rm -rf "$DIR/db"; mv "$DIR/db-after" "$DIR/db"

status=0
echo "files compared: $(ls "$DIR/out-before" | wc -l) per run"
if diff -r "$DIR/out-before" "$DIR/out-after" > "$DIR/diff.txt"; then
  echo "ingest, browse, export and reports: identical"
else
  echo "DIFFERENT (ingest and reports by each binary): see $DIR/diff.txt"; head -40 "$DIR/diff.txt"; status=1
fi
if diff -r "$DIR/out-before-reports" "$DIR/out-after-on-before" > "$DIR/diff-reports.txt"; then
  echo "reports on the same database: identical"
else
  echo "DIFFERENT (reports on the same database): see $DIR/diff-reports.txt"; head -40 "$DIR/diff-reports.txt"; status=1
fi
exit $status
