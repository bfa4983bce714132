#!/usr/bin/env bash
# Checks a Windows build: a PE32+ x86-64 executable whose import table names
# only DLLs that ship with Windows itself (nothing from MinGW, no
# libwinpthread, no libgcc), with the expected subsystem.
# usage: check-windows.sh EXE gui|console
set -euo pipefail
exe=${1:?usage: check-windows.sh EXE gui|console}
want=${2:?usage: check-windows.sh EXE gui|console}
fail() { echo "check-windows: FAIL: $exe: $*" >&2; exit 1; }
file -b "$exe" | grep -q '^PE32+ executable' || fail "not a PE32+ executable: $(file -b "$exe")"
dump=$(x86_64-w64-mingw32-objdump -p "$exe")
grep -q '^Magic[[:space:]]*020b' <<<"$dump" || fail "optional header magic is not 020b (PE32+)"
case $want in
  gui) grep -qE '^Subsystem[[:space:]]+00000002' <<<"$dump" || fail "not a Windows GUI subsystem binary" ;;
  console) grep -qE '^Subsystem[[:space:]]+00000003' <<<"$dump" || fail "not a console subsystem binary" ;;
esac
# Windows system DLLs (System32), compared case-insensitively.
system="kernel32 user32 gdi32 opengl32 shell32 advapi32 ws2_32 winmm ntdll ole32 oleaut32 comdlg32 comctl32 dwmapi imm32 shcore crypt32 bcrypt bcryptprimitives msvcrt ucrtbase version setupapi powrprof userenv secur32 iphlpapi dnsapi netapi32 winspool.drv"
dlls=$(sed -n 's/^[[:space:]]*DLL Name: //p' <<<"$dump" | sort -uf)
[ -n "$dlls" ] || fail "no import table found"
for d in $dlls; do
  base=$(tr 'A-Z' 'a-z' <<<"${d%.dll}"); base=${base%.DLL}
  [[ " $system " == *" $base "* ]] || fail "imports $d, which is not a Windows system DLL"
done
grep -q '\.rsrc' < <(x86_64-w64-mingw32-objdump -h "$exe") || fail "no resource section (icon, version information)"
echo "check-windows: $(basename "$exe"): PE32+, $want subsystem, resources present, imports only $(echo $dlls | tr ' ' ',')"
