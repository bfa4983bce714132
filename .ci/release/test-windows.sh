#!/usr/bin/env bash
# The Windows builds, run under Wine 10 (.ci/release/wine.sh) the way a
# Windows user runs them, each result compared with the Linux build's:
#   1. version / version --json name the .exe's own SHA-256 (= sha256sum), and
#      buildinfo's own test, cross-compiled, passes under Wine
#   2. audit ingest of a generated CloudTrail trail and both reports: the same
#      CSV and JSON figures as the Linux build on the same input
#   3. ceremony plan of every shipped template: the same plan as on Linux
#   4. ceremony verify of a transcript the Linux build wrote (a rehearsal root
#      ceremony): accepted, naming the Linux binary; tampered copies refused
#   5. the GUI build's window under Xvfb: the Home page drawn (its labels read
#      back with OCR), and the Ceremonies page
# usage: test-windows.sh LINUX_BIN WIN_CLI WIN_GUI        (as root: chroot, mount)
# KC_SCREENSHOT_DIR=DIR keeps the screenshots as DIR/windows-home.png and
# DIR/windows-ceremonies.png (make windows-screenshots).
set -euo pipefail
linux=$(realpath "${1:?usage: test-windows.sh LINUX_BIN WIN_CLI WIN_GUI}")
cli_src=$(realpath "${2:?usage: test-windows.sh LINUX_BIN WIN_CLI WIN_GUI}")
gui_src=$(realpath "${3:?usage: test-windows.sh LINUX_BIN WIN_CLI WIN_GUI}")
repo=$(cd "$(dirname "$0")/../.." && pwd)
wine=$repo/.ci/release/wine.sh
fail() { echo "test-windows: FAIL: $*" >&2; exit 1; }
step() { echo "test-windows: $*"; }
export LANG=C.UTF-8 LANGUAGE=en
work=$(mktemp -d /tmp/kc-wine-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
# $work/win is Z:\win for the Windows programs; $work/linux is the Linux side.
win=$work/win lx=$work/linux
mkdir -p "$win" "$lx"
cli=$(basename "$cli_src") gui=$(basename "$gui_src")
cp "$cli_src" "$gui_src" "$win/"
W() { bash "$wine" run "$win" "$@"; }

bash "$wine" setup
bash "$wine" reset

# --- 1. the binary names itself ----------------------------------------------
for exe in "$cli" "$gui"; do
  want=$(sha256sum "$win/$exe" | cut -d' ' -f1)
  W "$exe" version >"$work/version.txt" 2>&1 || { cat "$work/version.txt"; fail "$exe version"; }
  got=$(sed -n 's/^sha256 *//p' "$work/version.txt" | tr -d '\r')
  [ "$got" = "$want" ] || { cat "$work/version.txt"; fail "$exe version prints sha256 '$got'; sha256sum of the .exe is $want"; }
  grep -q "^executable .*$exe" "$work/version.txt" || { cat "$work/version.txt"; fail "$exe version does not name its own file"; }
  W "$exe" version --json >"$work/version.json" || fail "$exe version --json"
  got=$(sed -n 's/^  "sha256": "\([0-9a-f]*\)",*\r*$/\1/p' "$work/version.json")
  [ "$got" = "$want" ] || { cat "$work/version.json"; fail "$exe version --json: sha256 '$got', sha256sum of the .exe is $want"; }
  step "$exe version and version --json name the .exe's SHA-256 $want"
done
# buildinfo's own test, built for Windows, hashes its .exe independently.
(cd "$repo" && GOOS=windows GOARCH=amd64 CGO_ENABLED=0 GOFLAGS= go test -c -o "$win/buildinfo.test.exe" ./ceremony/buildinfo)
W buildinfo.test.exe -test.run '^TestExecutableHashIsTheRunningFile$' -test.v >"$work/bi.txt" 2>&1 \
  || { cat "$work/bi.txt"; fail "ceremony/buildinfo TestExecutableHashIsTheRunningFile under Wine"; }
grep -q -- '--- PASS: TestExecutableHashIsTheRunningFile' "$work/bi.txt" || { cat "$work/bi.txt"; fail "the buildinfo test did not run"; }
step "ceremony/buildinfo TestExecutableHashIsTheRunningFile passes under Wine"

# --- 2. audit: the same figures as the Linux build ---------------------------
(cd "$repo" && GOFLAGS= go run ./test/cloudtrailgen/cmd/cloudtrailgen -out "$work/trail" -events 3000 -days 7 -seed 21 >/dev/null)
cp -a "$work/trail" "$lx/logs"; cp -a "$work/trail" "$win/logs"
reports() { # reports RUNNER DIR: ingest and both reports, outputs in DIR
  local run=$1 dir=$2 k
  (cd "$dir" && $run audit ingest --db audit.db --json logs >ingest.json 2>ingest.err) || { cat "$dir/ingest.err"; fail "audit ingest ($run)"; }
  for k in rotation usage; do
    (cd "$dir" && $run audit report "$k" --db audit.db --from 2025-03-01 --to 2025-03-07 -o "$k.pdf" --csv "$k.csv" --json "$k.json" >"$k.out" 2>&1) \
      || { cat "$dir/$k.out"; fail "audit report $k ($run)"; }
  done
}
reports "$linux" "$lx"
reports "W $cli" "$win"
# What may differ: when and where it ran (database path, file paths as the
# platform writes them, ingest times, the generator's platform).
normalise() {
  jq -S 'walk(if type == "object" then del(.generated_at, .ingested_at, .elapsed_ns, .database, .generator) else . end)
         | walk(if type == "object" and has("path") and (.path | type) == "string" then .path |= gsub("\\\\"; "/") else . end)' "$1"
}
for k in rotation usage; do
  cmp -s "$lx/$k.csv" "$win/$k.csv" || { diff "$lx/$k.csv" "$win/$k.csv" | head -20; fail "$k CSV differs between Linux and Windows"; }
  diff <(normalise "$lx/$k.json") <(normalise "$win/$k.json") >"$work/$k.diff" || { head -30 "$work/$k.diff"; fail "$k JSON differs between Linux and Windows"; }
  summary() { sed -n "s/^$k report, \(.*\) ([0-9.]* s)\r*$/\1/p" "$1"; }
  [ -n "$(summary "$lx/$k.out")" ] && [ "$(summary "$lx/$k.out")" = "$(summary "$win/$k.out")" ] \
    || fail "$k summary: Linux '$(summary "$lx/$k.out")', Windows '$(summary "$win/$k.out")'"
  pdftotext "$win/$k.pdf" - | grep -q . || fail "$k.pdf from Windows has no text"
  step "$k report: CSV identical, JSON identical but for time and paths ($(summary "$win/$k.out"))"
done
diff <(normalise "$lx/ingest.json") <(normalise "$win/ingest.json") || fail "ingest summary differs"

# --- 3. ceremony plan of every template --------------------------------------
n=0
for t in "$repo"/assets/ceremonies/*.yaml; do
  name=$(basename "$t")
  cp "$t" "$win/$name"; cp "$t" "$lx/$name"
  (cd "$lx" && "$linux" ceremony plan "$name" >"$name.plan" 2>&1) || { cat "$lx/$name.plan"; fail "Linux ceremony plan $name"; }
  (cd "$win" && W "$cli" ceremony plan "$name" >"$name.plan" 2>&1) || { cat "$win/$name.plan"; fail "Windows ceremony plan $name"; }
  diff <(tr -d '\r' <"$lx/$name.plan") <(tr -d '\r' <"$win/$name.plan") >"$work/plan.diff" || { head -20 "$work/plan.diff"; fail "ceremony plan $name differs between Linux and Windows"; }
  grep -q "^Script SHA-256 $(sha256sum "$t" | cut -d' ' -f1)" "$win/$name.plan" || fail "plan of $name does not show the script's SHA-256"
  n=$((n + 1))
done
[ "$n" -ge 6 ] || fail "only $n templates in assets/ceremonies"
step "ceremony plan: the $n templates plan identically on Windows and Linux"

# --- 4. ceremony verify of a Linux transcript --------------------------------
c=$lx/ceremony; mkdir -p "$c/media" "$c/tmp"
"$linux" ceremony template root-generation | sed -e 's|directory: ceremony-output|directory: out|' -e 's|delivery: \[card, file\]|delivery: [file]|' >"$c/root.yaml"
{
  echo "confirm: true"; echo "deliver:"
  for p in "Carol Chen" "Dan Diaz" "Erin Evans" "Frank Fox" "Grace Gray"; do
    echo "  $p: {file: media/${p// /_}.age, passphrase: \"passphrase of $p\"}"
  done
  echo "present:"; for p in "Grace Gray" "Dan Diaz" "Erin Evans"; do echo "  - {custodian: $p}"; done
} >"$c/answers.yaml"
(cd "$c" && TMPDIR=$c/tmp "$linux" ceremony run root.yaml --answers answers.yaml --rehearse >run.log 2>&1) || { tail -20 "$c/run.log"; fail "rehearsal root ceremony with the Linux build"; }
tr_name=REHEARSAL-example-root-2026.transcript.jsonl
cp -a "$c/out-rehearsal" "$win/good"
(cd "$win" && W "$cli" ceremony verify "good\\$tr_name" >verify.out 2>&1) || { cat "$win/verify.out"; fail "Windows refused the Linux transcript"; }
linux_sum=$(sha256sum "$linux" | cut -d' ' -f1)
grep -q "^Transcript OK: " "$win/verify.out" && grep -q "SHA-256 $linux_sum" "$win/verify.out" && grep -q "^Complete " "$win/verify.out" \
  || { cat "$win/verify.out"; fail "ceremony verify on Windows does not report the Linux transcript complete, made by $linux_sum"; }
"$linux" ceremony verify "$c/out-rehearsal/$tr_name" >"$work/verify-linux.out" || fail "Linux verify of its own transcript"
diff <(tr -d '\r' <"$win/verify.out") "$work/verify-linux.out" >/dev/null || fail "verify prints differently on Windows and Linux"
step "ceremony verify on Windows: the Linux transcript is complete and names the Linux binary $linux_sum"
# An output file changed after the ceremony, and a transcript entry changed.
cp -a "$c/out-rehearsal" "$win/file-tampered"
printf 'X' | dd of="$win/file-tampered/REHEARSAL-example-root-2026.cert.pem" bs=1 seek=40 conv=notrunc status=none
cp -a "$c/out-rehearsal" "$win/entry-tampered"
sed -i '3s/"result":"ok"/"result":"OK"/' "$win/entry-tampered/$tr_name"
cmp -s "$win/entry-tampered/$tr_name" "$c/out-rehearsal/$tr_name" && fail "the transcript edit changed nothing"
for t in file-tampered entry-tampered; do
  if (cd "$win" && W "$cli" ceremony verify "$t\\$tr_name" >"$t.out" 2>&1); then
    cat "$win/$t.out"; fail "Windows accepted the $t transcript"
  fi
  grep -q "Transcript OK" "$win/$t.out" && fail "the $t transcript is reported OK"
  step "ceremony verify on Windows refuses the $t copy: $(tr -d '\r' <"$win/$t.out" | head -1)"
done
grep -q "cert.pem" "$win/file-tampered.out" || { cat "$win/file-tampered.out"; fail "the refusal does not name the altered file"; }
grep -q "entry 3" "$win/entry-tampered.out" || { cat "$win/entry-tampered.out"; fail "the refusal does not name the altered entry"; }

# --- 5. the GUI ----------------------------------------------------------------
shots=${KC_SCREENSHOT_DIR:-$work/shots}; mkdir -p "$shots"
# ocr PNG: the words on the screen, scaled up for tesseract.
ocr() { convert "$1" -resize 200% -colorspace Gray "$work/ocr.png" && tesseract "$work/ocr.png" - 2>/dev/null; }
bash "$wine" gui "$win" "$shots/windows-home.png" "$gui" --page home >/dev/null
colours=$(convert "$shots/windows-home.png" -format '%k' info:)
[ "$colours" -ge 16 ] || fail "the Home page screenshot has $colours colours: blank"
ocr "$shots/windows-home.png" >"$work/home.txt"
for want in "This laptop" "Recent ceremonies" "Binary SHA-256" "network interfaces"; do
  grep -qi "$want" "$work/home.txt" || { cat "$work/home.txt"; fail "the Home page screenshot does not show '$want'"; }
done
step "GUI: the Home page is drawn ($colours colours; reads 'This laptop', 'Binary SHA-256', the air-gap warning)"
bash "$wine" gui "$win" "$shots/windows-ceremonies.png" "$gui" --page ceremonies >/dev/null
ocr "$shots/windows-ceremonies.png" >"$work/ceremonies.txt"
for want in "root-generation" "byok-wrap"; do
  grep -qi "$want" "$work/ceremonies.txt" || { cat "$work/ceremonies.txt"; fail "the Ceremonies page screenshot does not show '$want'"; }
done
step "GUI: the Ceremonies page lists the templates"
step "PASS"
