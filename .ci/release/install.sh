#!/bin/sh
# Installs Key Ceremony from this offline bundle on Debian 12 (amd64).
# usage: sudo sh install.sh
#
# Every file is checked against SHA256SUMS before anything is installed; a
# missing, altered or unlisted package stops the installation with its name,
# and nothing is installed. Packages are installed with dpkg from this
# directory only: this script never uses the network.
set -eu
cd "$(dirname "$0")"
say() { printf 'install.sh: %s\n' "$*"; }
refuse() { say "$*"; say "NOTHING WAS INSTALLED."; exit 1; }

[ "$(id -u)" -eq 0 ] || refuse "run as root: sudo sh install.sh"
command -v dpkg >/dev/null 2>&1 || refuse "dpkg not found: this bundle is for Debian 12"
command -v sha256sum >/dev/null 2>&1 || refuse "sha256sum not found (coreutils)"
[ -f SHA256SUMS ] || refuse "SHA256SUMS is missing from the bundle"
arch=$(dpkg --print-architecture)
[ "$arch" = amd64 ] || refuse "this bundle is for amd64, this machine is $arch"

# 1. Verify: every listed file exists with its hash, every .deb is listed.
bad=0
while read -r sum file; do
  file=${file#\*}
  case $file in ""|/*|*..*) say "SHA256SUMS has an unsafe entry: '$file'"; bad=1; continue ;; esac
  if [ ! -f "$file" ]; then
    say "MISSING: $file (listed in SHA256SUMS)"; bad=1; continue
  fi
  got=$(sha256sum "$file" | cut -d' ' -f1)
  if [ "$got" != "$sum" ]; then
    say "HASH MISMATCH: $file"
    say "  expected $sum"
    say "  found    $got"
    bad=1
  fi
done <SHA256SUMS
for deb in debs/*.deb; do
  [ -e "$deb" ] || refuse "no packages in debs/"
  awk -v f="$deb" '$2 == f { found = 1 } END { exit !found }' SHA256SUMS || { say "NOT LISTED in SHA256SUMS: $deb"; bad=1; }
done
[ "$bad" -eq 0 ] || refuse "the bundle does not match SHA256SUMS (see above)"
say "all $(wc -l <SHA256SUMS) files match SHA256SUMS"

# 2. Install what is missing or older; never downgrade what the machine has.
set --
for deb in debs/*.deb; do
  p=$(dpkg-deb -f "$deb" Package)
  v=$(dpkg-deb -f "$deb" Version)
  have=$(dpkg-query -W -f='${Status} ${Version}' "$p" 2>/dev/null | sed -n 's/^install ok installed //p')
  if [ -n "$have" ] && dpkg --compare-versions "$have" ge "$v"; then
    continue
  fi
  set -- "$@" "$deb"
done
if [ "$#" -gt 0 ]; then
  say "installing $# packages with dpkg"
  DEBIAN_FRONTEND=noninteractive dpkg -i "$@" || {
    say "dpkg failed; the packages above may be half-configured: 'dpkg --configure -a' retries, 'dpkg -l | grep -v ^ii' lists them"
    exit 1
  }
fi
dpkg-query -W -f='${Status}' keyceremony 2>/dev/null | grep -q "install ok installed" || { say "keyceremony is not installed"; exit 1; }
say "installed: $(keyceremony version | head -1)"
keyceremony version | sed -n 's/^sha256 *//p' | { read -r h; say "binary SHA-256 $h: compare it with the release's SHA256SUMS"; }
