#!/usr/bin/env bash
# The offline bundle, installed the way a security officer installs it: in a
# fresh minimal Debian 12 root (debootstrap --variant=minbase) with the network
# cut (unshare -n), followed by the first commands on the built-in SoftHSM
# token. Then a copy of the bundle with one altered and one missing .deb must
# be refused, naming both files, with nothing installed.
# usage: test-bundle.sh BUNDLE.tar          (as root: debootstrap, chroot, unshare)
set -euo pipefail
tarball=$(realpath "${1:?usage: test-bundle.sh BUNDLE.tar}")
name=$(basename "$tarball" .tar)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/keyceremony
base=$cache/debian12-minbase.tar
[ "$(id -u)" -eq 0 ] || { echo "test-bundle: needs root (debootstrap, chroot, unshare)" >&2; exit 1; }
work=$(mktemp -d /tmp/kc-bundle-test.XXXXXX)
roots=()
cleanup() {
  for r in "${roots[@]}"; do
    for m in dev proc; do mountpoint -q "$r/$m" && umount -l "$r/$m"; done
  done
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "test-bundle: FAIL: $*" >&2; exit 1; }
step() { echo "test-bundle: $*"; }

# A minimal Debian 12, cached as a tarball between runs on one machine.
if [ ! -f "$base" ]; then
  step "debootstrap --variant=minbase bookworm (first run on this machine)"
  mkdir -p "$cache"
  debootstrap --variant=minbase bookworm "$work/debootstrap" "$mirror" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log"; fail "debootstrap"; }
  tar -C "$work/debootstrap" -cf "$base.tmp" . && mv "$base.tmp" "$base"
  rm -rf "$work/debootstrap"
fi

# newroot NAME: a fresh copy of the minimal root with the bundle in /root; sets $root.
newroot() {
  root=$work/$1
  mkdir -p "$root"; tar -C "$root" -xf "$base"
  roots+=("$root")
  mount -t proc proc "$root/proc"
  mount --rbind /dev "$root/dev"
  tar -C "$root/root" -xf "$tarball"
}
# offline ROOT CMD...: run CMD in ROOT in a new, empty network namespace.
offline() {
  local r=$1; shift
  unshare -n chroot "$r" /usr/bin/env -i HOME=/root LANG=C.UTF-8 LANGUAGE=en \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"
}

# --- 1. install and use -------------------------------------------------------
newroot install; a=$root
ifaces=$(offline "$a" sh -c 'tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "' | tr '\n' ' ')
[ "$ifaces" = "lo " ] || fail "the network namespace has interfaces other than lo: $ifaces"
step "network cut: the install sees only '${ifaces% }' (down)"
offline "$a" dpkg -s softhsm2 >/dev/null 2>&1 && fail "the minimal root already has softhsm2: the test proves nothing"
offline "$a" sh -c "test ! -e /usr/lib/x86_64-linux-gnu/libGL.so.1" || fail "the minimal root already has libGL"

step "install.sh in the minimal root, offline"
offline "$a" sh "/root/$name/install.sh" >"$work/install.log" 2>&1 || { cat "$work/install.log"; fail "install.sh failed"; }
grep -q "files match SHA256SUMS" "$work/install.log" || { cat "$work/install.log"; fail "install.sh did not report its hash check"; }
sed 's/^/    /' "$work/install.log" | tail -4

for p in keyceremony softhsm2 opensc p11-kit libgl1; do
  offline "$a" dpkg-query -W -f='${Status}' "$p" | grep -q "install ok installed" || fail "$p not installed"
done

printf '87654321\n' >"$a/root/so.pin"; printf '1234\n' >"$a/root/user.pin"
chmod 0600 "$a/root/so.pin" "$a/root/user.pin"
step "keyceremony token init / token list --json / key generate on the built-in SoftHSM token"
offline "$a" keyceremony token init --label offline-test --so-pin-file /root/so.pin --pin-file /root/user.pin >"$work/init.log" 2>&1 \
  || { cat "$work/init.log"; fail "token init"; }
offline "$a" keyceremony token list --json >"$work/list.json" 2>"$work/list.err" || { cat "$work/list.err"; fail "token list"; }
grep -q '"label": *"offline-test"' "$work/list.json" || { cat "$work/list.json"; fail "token list --json does not show the new token"; }
offline "$a" keyceremony key generate --token 'pkcs11:token=offline-test' --label root-key --type ec-p384 --pin-file /root/user.pin --json \
  >"$work/key.json" 2>"$work/key.err" || { cat "$work/key.err"; fail "key generate"; }
grep -q '"label": *"root-key"' "$work/key.json" || { cat "$work/key.json"; fail "key generate --json does not name the key"; }
[ "$(stat -c %a "$a/root/.config/keyceremony/softhsm")" = 700 ] || fail "the built-in token directory is not 0700"
step "token initialised, listed, EC P-384 key generated; token store $(stat -c %a "$a/root/.config/keyceremony/softhsm") under /root/.config/keyceremony/softhsm"

# --- 2. a tampered bundle is refused and installs nothing ----------------------
newroot tampered; b=$root
debs=("$b/root/$name"/debs/*.deb)
victim=$(cd "$b/root/$name" && ls debs/softhsm2-common_*.deb debs/libsofthsm2_*.deb 2>/dev/null | head -1)
[ -n "$victim" ] || victim=${debs[1]#"$b/root/$name/"}
printf 'X' | dd of="$b/root/$name/$victim" bs=1 seek=200 conv=notrunc status=none
missing=$(cd "$b/root/$name" && ls debs/opensc-pkcs11_*.deb | head -1)
rm "$b/root/$name/$missing"
before=$(sha256sum "$b/var/lib/dpkg/status" | cut -d' ' -f1)
step "install.sh with $victim altered and $missing removed"
if offline "$b" sh "/root/$name/install.sh" >"$work/tampered.log" 2>&1; then
  cat "$work/tampered.log"; fail "install.sh accepted a tampered bundle"
fi
sed 's/^/    /' "$work/tampered.log"
grep -q "HASH MISMATCH: $victim" "$work/tampered.log" || fail "install.sh did not name the altered file $victim"
grep -q "MISSING: $missing" "$work/tampered.log" || fail "install.sh did not name the missing file $missing"
grep -q "NOTHING WAS INSTALLED" "$work/tampered.log" || fail "install.sh did not say that nothing was installed"
[ "$(sha256sum "$b/var/lib/dpkg/status" | cut -d' ' -f1)" = "$before" ] || fail "the dpkg database changed"
[ ! -e "$b/usr/bin/keyceremony" ] || fail "keyceremony was installed from a tampered bundle"
offline "$b" dpkg -s softhsm2 >/dev/null 2>&1 && fail "softhsm2 was installed from a tampered bundle"
step "PASS: offline install works; a tampered bundle is refused and the dpkg database is unchanged"
