#!/usr/bin/env bash
# The Windows builds, run under Wine 10 (.ci/release/wine.sh) the way a
# Windows user runs them, each result compared with the Linux build's:
#   1. version / version --json name the .exe's own SHA-256 (= sha256sum), and
#      buildinfo's own test, cross-compiled, passes under Wine
#   2. audit ingest of a generated CloudTrail trail and both reports: the same
#      CSV and JSON figures as the Linux build on the same input
#   3. ceremony verify of a transcript the Linux build wrote (the root
#      ceremony of the shipped template on a SoftHSM token): accepted against
#      the final hash on the paper, naming the Linux binary; copies with an
#      altered file or entry refused
#   4. ceremony plan of every shipped template: the same plan as on Linux,
#      the same token probed through SoftHSM2 for Windows (built from
#      Debian's sources) as through Debian's SoftHSM2
#   5. a token on Windows: token init, key generate, and a rehearsal root
#      ceremony whose transcript the Linux build verifies
#   6. the GUI build's window under Xvfb: the Home page drawn (its labels read
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
trap '[ -n "${KC_KEEP:-}" ] || rm -rf "$work"' EXIT
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
  # One parsing worker: rows are then numbered in the same order on both
  # sides, so even the reports' input_sha256 (a digest over the rows their
  # queries read) must agree.
  (cd "$dir" && $run audit ingest --workers 1 --db audit.db --json logs >ingest.json 2>ingest.err) || { cat "$dir/ingest.err"; fail "audit ingest ($run)"; }
  for k in rotation usage; do
    (cd "$dir" && $run audit report "$k" --db audit.db --from 2025-03-01 --to 2025-03-07 -o "$k.pdf" --csv "$k.csv" --json "$k.json" >"$k.out" 2>&1) \
      || { cat "$dir/$k.out"; fail "audit report $k ($run)"; }
  done
}
reports "$linux" "$lx"
reports "W $cli" "$win"
# Standard output is compared; Wine may add its own lines on standard error.
# What may differ: when it ran, and file paths as the platform writes them;
# in the record of the ingest runs (meta.provenance.runs) also when each run
# started, committed and finished, and its process id.
normalise() {
  jq -S 'walk(if type == "object" then del(.generated_at, .ingested_at, .elapsed_ns) else . end)
         | if (.meta.provenance.runs | type) == "array" then .meta.provenance.runs |= map(del(.started_at, .finished_at, .last_commit, .pid)) else . end
         | walk(if type == "object" and has("path") and (.path | type) == "string" then .path |= gsub("\\\\"; "/") else . end)' "$1"
}
for k in rotation usage; do
  cmp -s "$lx/$k.csv" "$win/$k.csv" || { diff "$lx/$k.csv" "$win/$k.csv" | head -20; fail "$k CSV differs between Linux and Windows"; }
  diff <(normalise "$lx/$k.json") <(normalise "$win/$k.json") >"$work/$k.diff" || { head -30 "$work/$k.diff"; fail "$k JSON differs between Linux and Windows"; }
  summary() { sed -n "s/^$k report, \(.*\) ([0-9.]* s)\r*$/\1/p" "$1"; }
  [ -n "$(summary "$lx/$k.out")" ] && [ "$(summary "$lx/$k.out")" = "$(summary "$win/$k.out")" ] \
    || fail "$k summary: Linux '$(summary "$lx/$k.out")', Windows '$(summary "$win/$k.out")'"
  # The PDF as a reader sees it: the same text, but for the time it was made,
  # up to the appendix of ingested files (there Windows writes its paths with
  # backslashes, which wrap differently; the JSON above compares that list).
  pdftext() {
    # Runs of spaces are squeezed: -layout pads a page's lines to its widest
    # one, and a page that lists a Windows path is as wide as the path.
    pdftotext -layout "$1" - | sed -E '/[Gg]enerated/s/20[0-9]{2}-[0-9]{2}-[0-9]{2} [0-9:]{8}Z/(time)/g' | sed '/^Appendix: ingested files/,$d' | sed -E 's/ +/ /g'
  }
  pdftext "$lx/$k.pdf" >"$work/$k.lx.txt"; pdftext "$win/$k.pdf" >"$work/$k.win.txt"
  [ "$(wc -l <"$work/$k.win.txt")" -gt 50 ] || fail "$k.pdf from Windows has almost no text"
  diff "$work/$k.lx.txt" "$work/$k.win.txt" >"$work/$k.diff" || { head -20 "$work/$k.diff"; fail "$k.pdf text differs between Linux and Windows"; }
  step "$k report: CSV identical; JSON and PDF text identical but for the time they were made ($(summary "$win/$k.out"))"
done
diff <(normalise "$lx/ingest.json") <(normalise "$win/ingest.json") || fail "ingest summary differs"

# --- 3. a Linux ceremony, verified on Windows ---------------------------------
# The root ceremony of the shipped template, run by the Linux build on a
# SoftHSM token (answers file and --unattended-test; air_gap: warn, as this
# machine is networked). Every share, the recovery quorum's too, goes to a file
# under media/; the key backup to backup/ (the recovery medium, relative to the
# script, so the same script copy works on both sides).
c=$lx/ceremony; mkdir -p "$c/media" "$c/tmp" "$c/softhsm/tokens" "$c/backup"
printf 'directories.tokendir = %s\nobjectstore.backend = file\n' "$c/softhsm/tokens" >"$c/softhsm/softhsm2.conf"
export SOFTHSM2_CONF=$c/softhsm/softhsm2.conf
softhsm2-util --init-token --free --label "Example Root 2026" --so-pin vendor-so-1111 --pin vendor-user-2222 >/dev/null
serial=$(softhsm2-util --show-slots | sed -n 's/^ *Serial number: *\([0-9a-f]\{16\}\)$/\1/p' | head -1)
[ -n "$serial" ] || fail "no SoftHSM token serial"
"$linux" ceremony template root-generation | sed -e "s|serial=EXAMPLE0000000000|serial=$serial|" -e 's|air_gap: block|air_gap: warn|' \
  -e 's|delivery: \[card, file\]|delivery: [file]|' -e 's|delivery: \[card\]|delivery: [file]|' \
  -e 's|^  medium: /media/root-backup$|  medium: backup|' >"$c/root-generation.yaml"
[ "$(grep -c '^  delivery: \[file\]$' "$c/root-generation.yaml")" = 2 ] && grep -q '^  medium: backup$' "$c/root-generation.yaml" \
  || fail "the root template's quorum and recovery sections are not what this test adapts (delivery, medium)"
custodians=("Carol Chen" "Dan Diaz" "Erin Evans" "Frank Fox" "Grace Gray")
recovery=("Ivan Ito" "Judy Jones" "Karl Kim")
{
  echo "confirm: true"; echo "pins: {so: vendor-so-1111, user: vendor-user-2222}"; echo "deliver:"
  for p in "${custodians[@]}" "${recovery[@]}"; do
    echo "  $p: {file: media/${p// /_}.age, passphrase: \"passphrase of $p\"}"
  done
  echo "present:"; for p in "Grace Gray" "Dan Diaz" "Erin Evans"; do echo "  - {custodian: $p}"; done
  echo "present_recovery:"; for p in "Ivan Ito" "Karl Kim"; do echo "  - {custodian: $p}"; done
} >"$c/answers.yaml"
(cd "$c" && TMPDIR=$c/tmp "$linux" ceremony run root-generation.yaml --answers answers.yaml --unattended-test >run.log 2>&1) || { tail -20 "$c/run.log"; fail "root ceremony with the Linux build"; }
out=$c/ceremony-output tr_name=example-root-2026.transcript.jsonl
[ -f "$c/backup/example-root-2026.key-backup.json" ] || fail "the root ceremony wrote no key backup to the recovery medium"
# The final hash the people in the room wrote on the signed paper: an auditor
# gives it to verify, which then also vouches for a transcript rewritten whole.
final=$(sed -n 's/^Final hash *\([0-9a-f]\{64\}\)$/\1/p' "$c/run.log")
[ ${#final} = 64 ] || { tail -8 "$c/run.log"; fail "the Linux ceremony printed no final hash"; }
cp -a "$out" "$win/good"
(cd "$win" && W "$cli" ceremony verify --expect "$final" "good\\$tr_name" >verify.out 2>verify.err) || { cat "$win/verify.out" "$win/verify.err"; fail "Windows refused the Linux transcript"; }
linux_sum=$(sha256sum "$linux" | cut -d' ' -f1)
tr -d '\r' <"$win/verify.out" >"$work/verify-win-of-linux.out"
grep -q "^Chain OK: " "$work/verify-win-of-linux.out" && grep -q "SHA-256 $linux_sum" "$work/verify-win-of-linux.out" \
  && grep -q "^Complete " "$work/verify-win-of-linux.out" && grep -q "paper: the final hash is the one written on the signed paper" "$work/verify-win-of-linux.out" \
  && [ "$(tail -1 "$work/verify-win-of-linux.out")" = "Transcript verified." ] \
  || { cat "$win/verify.out"; fail "ceremony verify on Windows does not report the Linux transcript verified and complete, made by $linux_sum, ending in the paper's final hash"; }
"$linux" ceremony verify --expect "$final" "$out/$tr_name" >"$work/verify-linux.out" || fail "Linux verify of its own transcript"
diff "$work/verify-linux.out" "$work/verify-win-of-linux.out" || fail "verify prints differently on Windows and Linux"
step "ceremony verify on Windows: the Linux root ceremony's transcript is complete, ends in the paper's final hash $final and names the Linux binary $linux_sum"
# An output file changed after the ceremony, and a transcript entry changed.
cp -a "$out" "$win/file-tampered"
printf 'X' | dd of="$win/file-tampered/example-root-2026.cert.pem" bs=1 seek=40 conv=notrunc status=none
cp -a "$out" "$win/entry-tampered"
sed -i '3s/"result":"ok"/"result":"OK"/' "$win/entry-tampered/$tr_name"
cmp -s "$win/entry-tampered/$tr_name" "$out/$tr_name" && fail "the transcript edit changed nothing"
for t in file-tampered entry-tampered; do
  if (cd "$win" && W "$cli" ceremony verify --expect "$final" "$t\\$tr_name" >"$t.out" 2>&1); then
    cat "$win/$t.out"; fail "Windows accepted the $t transcript"
  fi
  grep -q "Transcript verified\|Chain OK" "$win/$t.out" && { cat "$win/$t.out"; fail "the $t transcript is reported OK"; }
  step "ceremony verify on Windows refuses the $t copy: $(tr -d '\r' <"$win/$t.out" | head -1)"
done
grep -q "cert.pem" "$win/file-tampered.out" || { cat "$win/file-tampered.out"; fail "the refusal does not name the altered file"; }
grep -q "entry 3" "$win/entry-tampered.out" || { cat "$win/entry-tampered.out"; fail "the refusal does not name the altered entry"; }

# --- 4. ceremony plan of every template ----------------------------------------
# SoftHSM2 for Windows, built from Debian's sources (.ci/release/softhsm-windows.sh)
# and put where its Windows installer puts it, so the app finds it as a
# Windows user's would.
dll=$(bash "$repo/.ci/release/softhsm-windows.sh")
cdrive=$(bash "$wine" c-drive)
mkdir -p "$cdrive/SoftHSM2/lib" && cp "$dll" "$cdrive/SoftHSM2/lib/softhsm2-x64.dll"
# The plans run in the directory of that ceremony: the later templates read
# its outputs (quorum records, certificate, key backup), a CSR and BYOK import
# parameters. A plan probes the script's token without logging in, so both
# sides plan against the same token store: the one the ceremony enrolled, plus
# the blank second token key-restore restores to. Windows gets a copy of the
# store, read by SoftHSM2 for Windows (its file format is the same), so the
# plans must agree line for line but for the module's path.
softhsm2-util --init-token --free --label "Example Root 2026 B" --so-pin vendor-so-1111 --pin vendor-user-2222 >/dev/null
serial_of() { # serial_of LABEL: the serial of the token labelled LABEL
  softhsm2-util --show-slots | awk -v l="$1" '/^ *Serial number:/ {s = $3} /^ *Label:/ {sub(/^ *Label: */, ""); sub(/ *$/, ""); if ($0 == l) print s}'
}
serial_b=$(serial_of "Example Root 2026 B")
[ -n "$serial_b" ] && [ "$(serial_of "Example Root 2026")" = "$serial" ] || fail "the token store does not hold both tokens"
mkdir -p "$c/inputs"
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-384 -nodes -keyout /dev/null -subj "/CN=Example Corp Issuing CA 1" \
  -out "$c/inputs/issuing-ca-1.csr" 2>/dev/null || fail "openssl req"
pub=$(openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:4096 2>/dev/null | openssl pkey -pubout -outform DER | base64 -w0)
printf '{"KeyId":"arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab","ImportToken":"%s","PublicKey":"%s","ParametersValidTo":"%s"}\n' \
  "$(head -c 64 /dev/urandom | base64 -w0)" "$pub" "$(date -u -d '+20 hours' +%Y-%m-%dT%H:%M:%SZ)" >"$c/inputs/import-parameters.json"
zero=$(printf '0%.0s' {1..64})
# adapt TEMPLATE OUT: the template as its reviewer would fill it in for this
# room: the tokens' real serials, the key backup where the root ceremony wrote
# it, and each all-zero SHA-256 pin replaced by the SHA-256 of the file its
# path names (relative to the script's directory, here $c).
adapt() {
  local line p sum
  sed -e "s|serial=EXAMPLE0000000000|serial=$serial|" -e "s|serial=EXAMPLE0000000001|serial=$serial_b|" \
    -e 's|path: /media/root-backup/|path: backup/|' "$1" | while IFS= read -r line; do
    if [[ $line =~ path:\ ([^,}]+),\ sha256:\ \"0{64}\" ]]; then
      p=${BASH_REMATCH[1]}
      sum=$(sha256sum <"$c/$p" | cut -d' ' -f1) || fail "$(basename "$1"): no file $p to pin"
      line=${line/\"$zero\"/\"$sum\"}
    fi
    printf '%s\n' "$line"
  done >"$2"
  ! grep -q "EXAMPLE000\|$zero\|/media/root-backup/" "$2" || fail "$(basename "$1"): a placeholder this test does not fill in"
}
rm -rf "$c/media" "$c/tmp"
cp -a "$c" "$win/plans"
printf 'directories.tokendir = Z:\\win\\plans\\softhsm\\tokens\nobjectstore.backend = file\n' >"$win/plans/softhsm/softhsm2.conf"
# A script names its token's module by an absolute path of its platform: the
# Windows copies name SoftHSM2 for Windows where its installer puts it.
winmodule() { sed 's|^  module: /usr/lib/softhsm/libsofthsm2.so$|  module: C:\\SoftHSM2\\lib\\softhsm2-x64.dll|' "$1"; }
n=0
for t in "$repo"/assets/ceremonies/*.yaml; do
  name=$(basename "$t")
  if [ ! -f "$c/$name" ]; then adapt "$t" "$c/$name"; fi
  winmodule "$c/$name" >"$win/plans/$name"
  grep -q 'softhsm2-x64.dll' "$win/plans/$name" || fail "$name: no module line to adapt for Windows"
  (cd "$c" && "$linux" ceremony plan "$name" >"$name.plan" 2>plan.err) || { cat "$c/$name.plan" "$c/plan.err"; fail "Linux ceremony plan $name"; }
  (cd "$win" && KC_WINE_ENV='SOFTHSM2_CONF=Z:\win\plans\softhsm\softhsm2.conf' W "$cli" ceremony plan "plans\\$name" >"$name.plan" 2>plan.err) \
    || { cat "$win/$name.plan" "$win/plan.err"; fail "Windows ceremony plan $name"; }
  # Lines 2-3 are the script's SHA-256 (hex, words): each names its own copy.
  grep -q "^Script SHA-256 $(sha256sum "$win/plans/$name" | cut -d' ' -f1)" "$win/$name.plan" || { cat "$win/$name.plan"; fail "plan of $name does not show the script's SHA-256"; }
  # The token was found and probed on both sides, each through its own module.
  grep -q '^Token "Example Root 2026\( B\)\?" in slot .*, module /usr/lib/softhsm/libsofthsm2.so (.*probed without logging in:$' "$c/$name.plan" \
    || { cat "$c/$name.plan"; fail "the Linux plan of $name did not probe the token"; }
  tr -d '\r' <"$win/$name.plan" >"$work/plan.win"
  grep -q '^Token "Example Root 2026\( B\)\?" in slot .*, module C:\\SoftHSM2\\lib\\softhsm2-x64.dll (.*probed without logging in:$' "$work/plan.win" \
    || { cat "$work/plan.win"; fail "the Windows plan of $name did not probe the token through SoftHSM2 for Windows"; }
  diff <(sed 2,3d "$c/$name.plan") <(sed -e 2,3d -e '/^Token /s|, module C:\\SoftHSM2\\lib\\softhsm2-x64.dll (|, module /usr/lib/softhsm/libsofthsm2.so (|' "$work/plan.win") >"$work/plan.diff" \
    || { head -20 "$work/plan.diff"; fail "ceremony plan $name differs between Linux and Windows"; }
  [ "$(grep -c '^ *[0-9]*\. ' "$work/plan.win")" -ge 8 ] || { cat "$work/plan.win"; fail "plan of $name lists fewer than 8 steps"; }
  n=$((n + 1))
done
[ "$n" -ge 6 ] || fail "only $n templates in assets/ceremonies"
unset SOFTHSM2_CONF
step "ceremony plan: the $n templates plan identically on Windows and Linux, the same tokens probed through SoftHSM2 for Windows"

# --- 5. a token on Windows ----------------------------------------------------
# The app's built-in token store under %AppData%, on SoftHSM2 for Windows.
printf '87654321\n' >"$win/so.pin"; printf '1234\n' >"$win/user.pin"
W "$cli" token init --label win-test --so-pin-file so.pin --pin-file user.pin >"$work/init.out" 2>&1 || { cat "$work/init.out"; fail "token init under Wine"; }
W "$cli" token list --json >"$work/list.json" 2>"$work/list.err" || { cat "$work/list.err"; fail "token list under Wine"; }
jq -e '[.. | objects | select(.label? == "win-test")] | length == 1' "$work/list.json" >/dev/null || { cat "$work/list.json"; fail "token list --json does not show win-test"; }
grep -q 'softhsm2-x64.dll' "$work/list.json" || { cat "$work/list.json"; fail "token list does not name the SoftHSM2 for Windows module"; }
for k in "ec-p384 root-key" "rsa-3072 rsa-key" "aes-256 kek"; do
  set -- $k
  W "$cli" key generate --token 'pkcs11:token=win-test' --type "$1" --label "$2" --pin-file user.pin --json >"$work/key.json" 2>"$work/key.err" \
    || { cat "$work/key.err"; fail "key generate $1 under Wine"; }
  jq -e --arg l "$2" 'map(select(.label == $l)) | length >= 1' "$work/key.json" >/dev/null || { cat "$work/key.json"; fail "key generate --json does not name $2"; }
done
W "$cli" key list --token 'pkcs11:token=win-test' --pin-file user.pin --json >"$work/keys.json" || fail "key list under Wine"
[ "$(jq '[.. | objects | select(.label? == "root-key" or .label? == "rsa-key" or .label? == "kek")] | map(.label) | unique | length' "$work/keys.json")" = 3 ] \
  || { cat "$work/keys.json"; fail "key list does not show the three keys"; }
[ -d "$cdrive/users/root/AppData/Roaming/keyceremony/softhsm/tokens" ] || fail "the built-in token store is not under %AppData%\\keyceremony\\softhsm"
step "token init, token list, key generate (EC P-384, RSA 3072, AES 256), key list on SoftHSM2 for Windows"
# A rehearsal root ceremony run on Windows (the throwaway token comes from the
# same DLL), verified by the Linux build. Wine cannot list network interfaces:
# the air-gap step must have asked the people in the room. The same script
# and answers as the Linux ceremony: shares to media\, the recovery quorum's
# too; a rehearsal writes the key backup to a medium of its own next to its
# output directory, never to the script's.
winmodule "$c/root-generation.yaml" >"$win/root-win.yaml"
mkdir -p "$win/media"
cp "$c/answers.yaml" "$win/answers.yaml"
(cd "$win" && W "$cli" ceremony run root-win.yaml --answers answers.yaml --rehearse >rehearsal.log 2>&1) \
  || { tail -20 "$win/rehearsal.log"; fail "rehearsal root ceremony under Wine"; }
wt=$win/ceremony-output-rehearsal/REHEARSAL-example-root-2026.transcript.jsonl
[ -f "$wt" ] || { ls "$win"; fail "no rehearsal transcript at $wt"; }
[ "$(ls "$win/media" | grep -c '\.age$')" = 8 ] || { ls "$win/media"; fail "the rehearsal did not deliver the 5 + 3 share files"; }
[ -f "$win/ceremony-output-rehearsal-backup-medium/REHEARSAL-example-root-2026.key-backup.json" ] \
  || { ls "$win"/ceremony-output-rehearsal*; fail "the rehearsal wrote no key backup to its recovery medium"; }
wfinal=$(tr -d '\r' <"$win/rehearsal.log" | sed -n 's/^Final hash *\([0-9a-f]\{64\}\)$/\1/p')
[ ${#wfinal} = 64 ] || { tail -8 "$win/rehearsal.log"; fail "the Windows rehearsal printed no final hash"; }
"$linux" ceremony verify --expect "$wfinal" "$wt" >"$work/verify-win.out" || { cat "$work/verify-win.out"; fail "the Linux build refuses the Windows rehearsal's transcript"; }
cli_sum=$(sha256sum "$win/$cli" | cut -d' ' -f1)
grep -q "SHA-256 $cli_sum" "$work/verify-win.out" && grep -q "^REHEARSAL" "$work/verify-win.out" && grep -q "^Complete " "$work/verify-win.out" \
  && [ "$(tail -1 "$work/verify-win.out")" = "Transcript verified." ] \
  || { cat "$work/verify-win.out"; fail "the Windows rehearsal's transcript does not name the .exe ($cli_sum) or is not complete"; }
gap=$(jq -c 'select(.step == "air-gap") | {i: ([.details[] | select(.key == "interfaces up") | .value][0]), by: ([.details[] | select(.key == "checked by") | .value][0]), n: (.actors | length)}' "$wt")
jq -e '(.i | startswith("unknown: ")) and (.by | test("by hand")) and .n >= 2' <<<"$gap" >/dev/null \
  || { echo "$gap"; fail "the air-gap step under Wine did not record a check by hand"; }
[[ $(openssl x509 -in "$win/ceremony-output-rehearsal/REHEARSAL-example-root-2026.cert.pem" -noout -subject) == *"Example Corp Root CA 2026"* ]] \
  || fail "the rehearsal's root certificate"
step "rehearsal root ceremony on Windows: verified by the Linux build, names the .exe $cli_sum; air-gap checked by hand ($gap)"

# --- 6. the GUI ----------------------------------------------------------------
shots=${KC_SCREENSHOT_DIR:-$work/shots}; mkdir -p "$shots"
# ocr PNG: the words on the screen, scaled up and made black on white for
# tesseract (the threshold keeps coloured text such as warnings).
ocr() { convert "$1" -resize 200% -colorspace Gray -threshold 85% "$work/ocr.png" && tesseract "$work/ocr.png" - 2>/dev/null; }
bash "$wine" gui "$win" "$shots/windows-home.png" "$gui" --page home >/dev/null
colours=$(convert "$shots/windows-home.png" -format '%k' info:)
[ "$colours" -ge 16 ] || fail "the Home page screenshot has $colours colours: blank"
ocr "$shots/windows-home.png" >"$work/home.txt"
for want in "This laptop" "Recent ceremonies" "Binary SHA-256" "cannot list its network interfaces"; do
  grep -qi "$want" "$work/home.txt" || { cat "$work/home.txt"; fail "the Home page screenshot does not show '$want'"; }
done
step "GUI: the Home page is drawn ($colours colours; reads 'This laptop', 'Binary SHA-256', the air-gap warning)"
bash "$wine" gui "$win" "$shots/windows-ceremonies.png" "$gui" --page ceremonies >/dev/null
ocr "$shots/windows-ceremonies.png" >"$work/ceremonies.txt"
for want in "Templates" "root-generation" "key-restore" "byok-wrap"; do
  grep -qi "$want" "$work/ceremonies.txt" || { cat "$work/ceremonies.txt"; fail "the Ceremonies page screenshot does not show '$want'"; }
done
step "GUI: the Ceremonies page lists the templates"
step "PASS"
