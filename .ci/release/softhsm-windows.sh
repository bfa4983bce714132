#!/usr/bin/env bash
# Builds SoftHSM2 for Windows (64-bit) from Debian's sources, cross-compiled
# with Debian's mingw-w64, so the Windows builds can be tested on a real
# PKCS#11 token under Wine. Debian ships no Windows build of any PKCS#11
# module nor of a crypto library SoftHSM2 can use, so both come from source:
#   OpenSSL 3.0 (Debian 12's source package), libcrypto only, static
#   SoftHSM2 2.6.1 (Debian 12's source package), autotools with --host=x86_64-w64-mingw32
# The result is one DLL that imports only Windows system DLLs:
#   $KC_SOFTHSM_WIN/softhsm2-x64.dll  (default /var/tmp/keyceremony-softhsm2-win64)
# built once (about 5 minutes on 2 cores) and reused while this script is
# unchanged.
# usage: softhsm-windows.sh           prints the DLL's path
set -euo pipefail
out=${KC_SOFTHSM_WIN:-/var/tmp/keyceremony-softhsm2-win64}
dll=$out/softhsm2-x64.dll
stamp=$(sha256sum "$0" | cut -d' ' -f1)
if [ -f "$dll" ] && [ "$(cat "$out/.kc-stamp" 2>/dev/null)" = "$stamp" ]; then echo "$dll"; exit 0; fi
die() { echo "softhsm-windows: $*" >&2; exit 1; }
for t in x86_64-w64-mingw32-gcc x86_64-w64-mingw32-g++ make perl; do
  command -v "$t" >/dev/null || die "$t missing (make deps-release installs it)"
done
work=$(mktemp -d /tmp/kc-softhsm-win.XXXXXX)
trap 'rm -rf "$work"' EXIT
log=$work/log
step() { echo "softhsm-windows: $*" >&2; }

# 1. Sources with apt-get source, from the deb-src twin of this machine's
#    Debian sources (a private apt state: the system's is not touched). apt
#    checks each file against the signed Sources index; a mirror may lack an
#    older version's files, so the newest version that downloads is used.
apt_dir=$work/apt; mkdir -p "$apt_dir/parts" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$work/src"
for f in /etc/apt/sources.list.d/*.sources; do
  [ -f "$f" ] && sed 's/^Types: deb$/Types: deb-src/' "$f" >"$apt_dir/parts/$(basename "$f")"
done
[ -f /etc/apt/sources.list ] && sed -n 's/^deb /deb-src /p' /etc/apt/sources.list >"$apt_dir/parts/main.list"
apt=(-o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$apt_dir/parts" -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache")
apt-get "${apt[@]}" update -qq >"$log" 2>&1 || { cat "$log"; die "apt-get update (deb-src)"; }
fetch() { # fetch PACKAGE: the upstream tarball of the newest version that downloads
  local v
  for v in $(apt-cache "${apt[@]}" showsrc "$1" | sed -n 's/^Version: //p' | sort -rV); do
    (cd "$work/src" && apt-get "${apt[@]}" source -qq --download-only "$1=$v" >>"$log" 2>&1) || true
    ls "$work/src/$1_${v%-*}".orig.tar.* >/dev/null 2>&1 && { echo "$1 $v"; return 0; }
    v=${v#*:}; ls "$work/src/$1_${v%-*}".orig.tar.* >/dev/null 2>&1 && { echo "$1 $v"; return 0; }
  done
  cat "$log" >&2; die "no source of $1 could be downloaded"
}
ossl=$(fetch openssl); shsm=$(fetch softhsm2)
step "building $ossl and $shsm for Windows (x86_64-w64-mingw32)"
tar -C "$work" -xf "$(ls "$work"/src/openssl_*.orig.tar.* | grep -v '\.asc$' | head -1)"
tar -C "$work" -xf "$(ls "$work"/src/softhsm2_*.orig.tar.* | grep -v '\.asc$' | head -1)"

# 2. libcrypto, static, without what SoftHSM2 does not use (it does use the
#    ENGINE API, for RDRAND).
w64=$work/w64
(cd "$work"/openssl-*/ &&
  ./Configure mingw64 --cross-compile-prefix=x86_64-w64-mingw32- --prefix="$w64" --libdir=lib \
    no-shared no-tests no-module no-dso no-ssl no-tls no-dtls no-comp no-camellia no-aria \
    no-sm2 no-sm3 no-sm4 no-idea no-seed no-rc2 no-rc4 no-rc5 no-md4 no-mdc2 no-whirlpool no-bf \
    no-cast no-ocsp no-cms no-ct no-ts no-srp no-siphash no-siv no-ec2m no-scrypt no-sock no-async \
    no-ui-console >"$log" 2>&1 &&
  make -j"$(nproc)" build_libs >>"$log" 2>&1 && make install_dev >>"$log" 2>&1) || { tail -30 "$log"; die "OpenSSL build failed"; }

# 3. SoftHSM2. Its Windows support targets MSVC (win32/*.vcxproj, whose
#    config.h comes from config.h.in.cmake). With autotools and mingw:
#    LoadLibrary must be found (a macro, so the configure probe misses it);
#    pthread.h must not (mingw has winpthreads, but SoftHSM then leaves its
#    Win32 mutexes for a DLL Windows does not ship); the Windows part of the
#    MSVC config.h is appended to the generated one; the syslog/setenv
#    stand-ins of src/lib/win32 go in as a static archive. libtool will not
#    link a DLL against static libraries, so it builds a static library and
#    the DLL is linked here, exporting the PKCS#11 functions only (.def file).
s=$(echo "$work"/softhsm2-*/); s=${s%/}
syslibs="-lws2_32 -lcrypt32 -lgdi32 -ladvapi32 -luser32 -lbcrypt"
(cd "$s" &&
  ./configure --host=x86_64-w64-mingw32 --prefix="$work/inst" --with-crypto-backend=openssl --with-openssl="$w64" \
    --disable-gost --disable-p11-kit --disable-non-paged-memory --with-objectstore-backend-db=no \
    --enable-static=no --enable-shared=yes ac_cv_func_LoadLibrary=yes ac_cv_header_pthread_h=no \
    CPPFLAGS="-I$s/src/lib/win32" LIBS="$syslibs" >"$log" 2>&1) \
  || { tail -30 "$log"; die "SoftHSM2 configure failed"; }
cat >>"$s/config.h" <<'CONFIG'

/* mingw-w64: the Windows part of the MSVC build's config.h.in.cmake */
#ifndef _WIN32_WINNT
#define _WIN32_WINNT 0x0600
#endif
#define WIN32_LEAN_AND_MEAN 1
#include <windows.h>
#undef min
#undef max
#ifdef __cplusplus
extern "C" {
#endif
int setenv(const char *name, const char *value, int overwrite);
#ifdef __cplusplus
}
#endif
CONFIG
for f in syslog setenv; do
  x86_64-w64-mingw32-g++ -O2 -c -I"$s" -I"$s/src/lib/win32" "$s/src/lib/win32/$f.cpp" -o "$work/$f.o"
done
x86_64-w64-mingw32-ar rcs "$work/libwin32compat.a" "$work/syslog.o" "$work/setenv.o"
# With -no-undefined, libtool gives up the DLL (static dependencies) and
# leaves a static libsofthsm2.a with every object.
make -j"$(nproc)" -C "$s/src/lib" libsofthsm2_la_LDFLAGS="-avoid-version -module -no-undefined" >"$log" 2>&1 \
  || { grep -B2 -A8 -m3 'error' "$log" | head -60; die "SoftHSM2 build failed"; }
{ echo EXPORTS; sed -n 's/^PKCS_API CK_RV \(C_[A-Za-z]*\)(.*/  \1/p' "$s/src/lib/main.cpp"; } >"$work/softhsm2.def"
[ "$(grep -c '^  C_' "$work/softhsm2.def")" -ge 60 ] || die "found only $(grep -c '^  C_' "$work/softhsm2.def") PKCS#11 functions in main.cpp"
built=$work/softhsm2-x64.dll
(cd "$s/src/lib" && x86_64-w64-mingw32-g++ -shared -s -o "$built" "$work/softhsm2.def" \
  -Wl,--whole-archive .libs/libsofthsm2.a -Wl,--no-whole-archive \
  "$work/libwin32compat.a" "$w64/lib/libcrypto.a" $syslibs -static-libgcc -static-libstdc++ -static >"$log" 2>&1) \
  || { tail -20 "$log"; die "linking softhsm2-x64.dll failed"; }
# Only Windows system DLLs: nothing from mingw (libstdc++, libgcc, winpthread).
# (The headers are read into a variable first: grep -q closing a pipe early
# would make objdump fail under pipefail.)
pe=$(x86_64-w64-mingw32-objdump -p "$built")
imports=$(sed -n 's/^[[:space:]]*DLL Name: //p' <<<"$pe" | tr 'A-Z' 'a-z' | sort -u | tr '\n' ' ')
for d in $imports; do
  case $d in kernel32.dll|advapi32.dll|user32.dll|gdi32.dll|crypt32.dll|ws2_32.dll|bcrypt.dll|msvcrt.dll|ucrtbase.dll|api-ms-win-*) ;;
    *) die "the DLL imports $d, which Windows does not ship" ;; esac
done
grep -q 'C_GetFunctionList' <<<"$pe" || die "the DLL does not export C_GetFunctionList"
mkdir -p "$out"; install -m 0644 "$built" "$dll"; echo "$stamp" >"$out/.kc-stamp"
step "$dll ($(du -h "$dll" | cut -f1); imports $imports)"
echo "$dll"
