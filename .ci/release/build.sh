#!/usr/bin/env bash
# Builds the release binaries of the source tree it runs in, reproducibly:
#   OUT/keyceremony-VERSION-linux-amd64            the app (GUI + headless commands)
#   OUT/keyceremony-VERSION-windows-amd64.exe      the app, Windows GUI subsystem (no console window)
#   OUT/keyceremony-cli-VERSION-windows-amd64.exe  the same program, console subsystem, for cmd.exe/PowerShell
# usage: build.sh VERSION OUT [linux|windows|all]
#
# Reproducible means: the same commit gives the same bytes in any directory,
# with any Go build cache. Hence -trimpath (no source paths), -buildvcs=false
# and the commit stamped with -X instead (the toolchain's VCS stamp includes a
# time and depends on how the tree was checked out), -s -w (no symbol table or
# DWARF, which would carry C compiler paths from cgo), GOFLAGS cleared (a
# user's flags must not change the build), and a fixed GOAMD64 level.
set -euo pipefail
version=${1:?usage: build.sh VERSION OUT [linux|windows|all]}
out=${2:?usage: build.sh VERSION OUT [linux|windows|all]}
which=${3:-all}
# The version is stamped into the binary inside a marker that buildinfo parses.
[[ $version =~ ^[0-9A-Za-z.+~_-]+$ ]] || { echo "build: VERSION '$version' may use only letters, digits and . + ~ _ -" >&2; exit 2; }
cd "$(git rev-parse --show-toplevel)"
mkdir -p "$out"
out=$(cd "$out" && pwd)

commit=$(git rev-parse HEAD)
git diff --quiet HEAD -- || commit="$commit-dirty"
pkg=github.com/keyceremony/keyceremony/ceremony/buildinfo
ldflags="-s -w -X $pkg.stamp=keyceremony-stamp:v1:$version:$commit:end"
export GOFLAGS= GOAMD64=v1 CGO_ENABLED=1 GOARCH=amd64
gobuild=(go build -trimpath -buildvcs=false)

if [ "$which" = all ] || [ "$which" = linux ]; then
  echo "build: linux/amd64 $version ($commit)"
  GOOS=linux "${gobuild[@]}" -ldflags "$ldflags" -o "$out/keyceremony-$version-linux-amd64" ./app
fi

if [ "$which" = all ] || [ "$which" = windows ]; then
  command -v x86_64-w64-mingw32-gcc >/dev/null || { echo "build: x86_64-w64-mingw32-gcc missing (make installs gcc-mingw-w64-x86-64)" >&2; exit 1; }
  # Icon, version resource and manifest go in through a .syso object that the
  # Go linker picks up from the main package's directory for windows/amd64
  # only; it exists only for the duration of this build.
  syso=app/zz_release_windows_amd64.syso
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp" "$syso"' EXIT
  # Windows wants a four-part numeric version: 1.2.3-rc.1 becomes 1.2.3.0.
  IFS=. read -r major minor patch _ <<<"${version%%[-+]*}.0.0.0"
  v4="$((10#${major:-0})).$((10#${minor:-0})).$((10#${patch:-0})).0"
  sed "s/@VERSION4@/$v4/" assets/windows/keyceremony.exe.manifest.in >"$tmp/keyceremony.exe.manifest"
  IFS=. read -r major minor patch build <<<"$v4"
  GOOS= GOARCH= CGO_ENABLED=0 go tool goversioninfo -64 \
    -icon assets/windows/keyceremony.ico -manifest "$tmp/keyceremony.exe.manifest" \
    -file-version "$version" -product-version "$version" -original-name keyceremony.exe \
    -ver-major "$major" -ver-minor "$minor" -ver-patch "$patch" -ver-build "$build" \
    -product-ver-major "$major" -product-ver-minor "$minor" -product-ver-patch "$patch" -product-ver-build "$build" \
    -o "$syso" assets/windows/versioninfo.json
  export GOOS=windows CC=x86_64-w64-mingw32-gcc CXX=x86_64-w64-mingw32-g++
  echo "build: windows/amd64 GUI $version ($commit)"
  "${gobuild[@]}" -ldflags "$ldflags -H windowsgui" -o "$out/keyceremony-$version-windows-amd64.exe" ./app
  echo "build: windows/amd64 console $version ($commit)"
  "${gobuild[@]}" -ldflags "$ldflags" -o "$out/keyceremony-cli-$version-windows-amd64.exe" ./app
fi
