#!/usr/bin/env bash
# Writes the offline bundle for an air-gapped Debian 12 laptop:
#   OUT/keyceremony-offline-VERSION-debian12-amd64.tar
# containing keyceremony-offline-VERSION-debian12-amd64/
#   install.sh        verifies every hash, then installs with dpkg only (no network)
#   SHA256SUMS        every other file of the bundle
#   README.txt        what this is and how to check it
#   debs/keyceremony_VERSION_amd64.deb   Key Ceremony itself, with proper Depends
#   debs/*.deb        every package it needs at run time that a minimal Debian 12
#                     (debootstrap --variant=minbase) lacks, with their dependencies
# usage: bundle.sh VERSION LINUX_BINARY OUT
# Run on a connected Debian 12 build machine: the .debs come from its apt
# sources with `apt-get download`.
set -euo pipefail
version=${1:?usage: bundle.sh VERSION LINUX_BINARY OUT}
binary=${2:?usage: bundle.sh VERSION LINUX_BINARY OUT}
out=${3:?usage: bundle.sh VERSION LINUX_BINARY OUT}
repo=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out"; out=$(cd "$out" && pwd)
binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")
name=keyceremony-offline-$version-debian12-amd64
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
b=$work/$name
mkdir -p "$b/debs"

# What Key Ceremony needs at run time: the token software (SoftHSM2 as the
# built-in token, OpenSC for USB smartcards and HSMs, p11-kit), and the GL/X11
# libraries the binary links (libGL, libX11) or GLFW loads when the window opens
# (Xcursor, Xrandr, Xinerama, Xi, Xxf86vm).
depends=(softhsm2 opensc p11-kit libgl1 libx11-6 libxcursor1 libxrandr2 libxinerama1 libxi6 libxxf86vm1)

# 1. Key Ceremony as a .deb, so dpkg knows what it needs and can remove it.
pkg=$work/pkg
install -D -m 0755 "$binary" "$pkg/usr/bin/keyceremony"
install -D -m 0644 "$repo/assets/icon.png" "$pkg/usr/share/pixmaps/org.keyceremony.app.png"
install -d "$pkg/usr/share/applications" "$pkg/DEBIAN"
cat >"$pkg/usr/share/applications/org.keyceremony.app.desktop" <<DESKTOP
[Desktop Entry]
Type=Application
Name=Key Ceremony
Comment=Quorum-controlled key ceremonies and AWS KMS audit
Exec=keyceremony
Icon=org.keyceremony.app
Categories=Utility;Security;
DESKTOP
dep_list=$(printf '%s, ' "${depends[@]}"); dep_list=${dep_list%, }
cat >"$pkg/DEBIAN/control" <<CONTROL
Package: keyceremony
Version: $version
Architecture: amd64
Maintainer: Key Ceremony <security@keyceremony.invalid>
Depends: $dep_list
Section: utils
Priority: optional
Homepage: https://github.com/keyceremony/keyceremony
Description: quorum-controlled key ceremonies and AWS KMS audit
 Key Ceremony runs root generation, CA signing and BYOK wrapping ceremonies
 against PKCS#11 tokens under an m-of-n quorum, with a hash-chained
 transcript, and audits AWS KMS key usage from CloudTrail.
CONTROL
# Timestamps in the .deb come from the commit, not from the build's clock.
export SOURCE_DATE_EPOCH=${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || echo 0)}
find "$pkg" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
dpkg-deb --root-owner-group -Zxz --build "$pkg" "$b/debs/keyceremony_${version}_amd64.deb" >/dev/null

# 2. The dependency closure against an empty dpkg database, minus what every
#    minimal Debian 12 already has (Priority: required, which is exactly what
#    debootstrap --variant=minbase installs besides apt).
sudo=""; [ "$(id -u)" -eq 0 ] || sudo=sudo
$sudo apt-get update -qq
: >"$work/empty-status"
apt-get -s -o Dir::State::status="$work/empty-status" -o APT::Install-Recommends=false \
  install "${depends[@]}" >"$work/sim.txt" 2>"$work/sim.err" \
  || { echo "bundle: apt-get could not resolve ${depends[*]}:"; cat "$work/sim.err"; exit 1; } >&2
# "Inst libfoo (1.2-3 Debian:12.8/stable [amd64])"
sed -n 's/^Inst \([^ ]*\) (\([^ ]*\) .*/\1=\2/p' "$work/sim.txt" >"$work/closure.txt"
want=()
while IFS== read -r p v; do
  prio=$(apt-cache show --no-all-versions "$p=$v" 2>/dev/null | sed -n 's/^Priority: //p' | head -1)
  [ "$prio" = required ] && continue
  want+=("$p=$v")
done <"$work/closure.txt"
[ ${#want[@]} -gt 0 ] || { echo "bundle: empty dependency list (apt sources?)" >&2; exit 1; }
echo "bundle: downloading ${#want[@]} packages"
# As root, apt-get download drops privileges to _apt (its sandbox): give it
# the download directory and a path to it, and take the files back after.
if [ "$(id -u)" -eq 0 ] && id _apt >/dev/null 2>&1; then
  chmod 0755 "$work" "$b"; chown _apt "$b/debs"
fi
(cd "$b/debs" && apt-get download -q "${want[@]}" >/dev/null 2>"$work/download.err") \
  || { echo "bundle: apt-get download failed:"; cat "$work/download.err"; exit 1; } >&2
[ "$(id -u)" -ne 0 ] || chown -R root:root "$b/debs"

# 3. Installer, README, hashes.
install -m 0755 "$repo/.ci/release/install.sh" "$b/install.sh"
cat >"$b/README.txt" <<README
Key Ceremony $version offline bundle for Debian 12 (amd64)

1. On the connected machine, check this tar's SHA-256 against the release's
   published SHA256SUMS:  sha256sum $name.tar
2. Carry the tar to the air-gapped laptop, then:
     tar -xf $name.tar && cd $name && sudo sh install.sh
   install.sh checks every file against SHA256SUMS first and installs nothing
   if one is missing or altered; it installs with dpkg only, never the network.
3. keyceremony version   prints the binary's SHA-256; compare it with the
   keyceremony-$version-linux-amd64 line of the release's SHA256SUMS.
README
(cd "$b" && find . -type f ! -name SHA256SUMS -printf '%P\n' | LC_ALL=C sort | xargs sha256sum >SHA256SUMS)
find "$b" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$SOURCE_DATE_EPOCH" \
  -C "$work" -cf "$out/$name.tar" "$name"
echo "bundle: $out/$name.tar ($(du -h "$out/$name.tar" | cut -f1), $(ls "$b/debs" | wc -l) packages)"
