#!/usr/bin/env bash
# Runs the Windows builds under Wine 10, from a Debian 12 machine.
#
# Debian 12's wine 8.0 cannot start Go 1.24+ Windows programs (its
# bcryptprimitives.dll lacks ProcessPrng); Debian 13's Wine 10 can, window
# included (Mesa's software GL under Xvfb). So the programs run in a Debian 13
# root of their own: debootstrap --variant=minbase trixie, plus wine and Mesa,
# built once (about 2-3 minutes) under $KC_WINE_ROOT (default
# /var/tmp/keyceremony-wine-trixie) and reused; it is rebuilt when the package
# list below changes.
#
# usage (as root: debootstrap, chroot, mount):
#   wine.sh setup                          build the root if needed
#   wine.sh run DIR EXE [ARGS...]          run DIR/EXE with DIR as the current directory
#                                          (Z:\win inside Wine), headless; exit status is EXE's
#   wine.sh gui DIR OUT.png EXE [ARGS...]  run DIR/EXE on a private Xvfb (1280x800), wait for
#                                          its "Key Ceremony" window, capture the window to
#                                          OUT.png once it has drawn, stop EXE
#   wine.sh reset                          a fresh Wine prefix (C: drive, registry) for the next calls
#   wine.sh c-drive                        print the host path of the prefix's C: drive
#   wine.sh clean                          remove the root
# Environment for EXE: KC_WINE_ENV="NAME=VALUE NAME=VALUE" (no spaces inside values).
# DIR is bind-mounted at /win in the root, so EXE reads and writes the host's files there.
# Known Wine limit: net.Interfaces fails ("getadaptersaddresses: Invalid data").
set -euo pipefail
R=${KC_WINE_ROOT:-/var/tmp/keyceremony-wine-trixie}
mirror=${DEBIAN13_MIRROR:-http://deb.debian.org/debian}
pkgs="wine wine64 libgl1 libgl1-mesa-dri libglx-mesa0 fonts-dejavu-core"
die() { echo "wine.sh: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot, mount)"

unmount_all() {
  local m
  for m in win tmp/.X11-unix proc; do
    mountpoint -q "$R/$m" 2>/dev/null && umount -l "$R/$m"
  done
  return 0
}

# The root is complete only once its stamp (the package list) is written.
setup() {
  if [ -f "$R/.kc-stamp" ] && [ "$(cat "$R/.kc-stamp")" = "$pkgs" ]; then return 0; fi
  command -v debootstrap >/dev/null || die "debootstrap missing (make deps-release installs it)"
  unmount_all; rm -rf --one-file-system "$R" "$R.new"; mkdir -p "$(dirname "$R")"
  echo "wine.sh: building the Debian 13 root with Wine 10 in $R (first run on this machine)"
  local log; log=$(mktemp)
  debootstrap --variant=minbase trixie "$R.new" "$mirror" >"$log" 2>&1 \
    || { tail -20 "$log"; rm -f "$log"; die "debootstrap trixie failed"; }
  cp /etc/resolv.conf "$R.new/etc/resolv.conf" 2>/dev/null || true
  chroot "$R.new" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive bash -c \
    "apt-get update -qq && apt-get install -y -qq --no-install-recommends $pkgs && apt-get clean" >"$log" 2>&1 \
    || { tail -20 "$log"; rm -f "$log"; die "installing wine in the root failed"; }
  rm -f "$log"
  mkdir -p "$R.new/win" "$R.new/tmp/.X11-unix"
  echo "$pkgs" >"$R.new/.kc-stamp"
  mv "$R.new" "$R"
  echo "wine.sh: wine $(chroot "$R" dpkg-query -W -f='${Version}' wine) ready in $R"
}

# in_root CMD...: run CMD in the root with /win bound to DIR (already mounted).
in_root() {
  local env=(PATH=/usr/bin:/bin HOME=/root WINEDEBUG=-all WINEPREFIX=/root/.wine XDG_RUNTIME_DIR=/tmp
    LANG=C.UTF-8 LANGUAGE=en)
  # shellcheck disable=SC2206
  [ -n "${KC_WINE_ENV:-}" ] && env+=($KC_WINE_ENV)
  chroot "$R" /usr/bin/env -i "${env[@]}" "$@"
}

mount_dir() {
  local dir=$1
  [ -d "$dir" ] || die "no directory $dir"
  mountpoint -q "$R/proc" || mount -t proc proc "$R/proc"
  mountpoint -q "$R/win" && umount -l "$R/win"
  mount --bind "$dir" "$R/win"
  # A new prefix is made quietly once (wineboot prints harmless complaints
  # about the 32-bit part this 64-bit-only root does not have).
  [ -d "$R/root/.wine" ] || in_root wineboot --init >/dev/null 2>&1 || die "wineboot failed"
}

cmd=${1:-}; shift || true
case $cmd in
  setup) setup ;;
  clean) unmount_all; rm -rf --one-file-system "$R" "$R.new" ;;
  c-drive)
    setup; mount_dir "$R/win"; unmount_all
    echo "$R/root/.wine/drive_c" ;;
  reset)
    setup
    if mountpoint -q "$R/proc"; then in_root wineserver -k 2>/dev/null || true; fi
    rm -rf "$R/root/.wine" ;;
  run)
    dir=${1:?usage: wine.sh run DIR EXE [ARGS...]}; exe=${2:?usage: wine.sh run DIR EXE [ARGS...]}; shift 2
    setup; mount_dir "$(realpath "$dir")"
    trap unmount_all EXIT
    set +e
    in_root bash -c 'cd /win && exec wine "$@"' wine "$exe" "$@"
    rc=$?
    exit $rc ;;
  gui)
    dir=${1:?usage: wine.sh gui DIR OUT.png EXE [ARGS...]}; shot=${2:?}; exe=${3:?}; shift 3
    command -v Xvfb >/dev/null && command -v xdotool >/dev/null && command -v import >/dev/null \
      || die "gui needs xvfb, xdotool and imagemagick (make deps-test installs them)"
    setup; mount_dir "$(realpath "$dir")"
    # A wineserver still alive from a console run (it lingers a few seconds
    # after its last program) holds a desktop made without a display, and a
    # window asked of it fails ("Failed to create helper window"): stop it.
    in_root wineserver -k 2>/dev/null || true
    in_root wineserver -w 2>/dev/null || true
    d=150; while [ -e "/tmp/.X11-unix/X$d" ] || [ -e "/tmp/.X$d-lock" ]; do d=$((d + 1)); done
    Xvfb ":$d" -screen 0 1280x800x24 -nolisten tcp -noreset >/dev/null 2>&1 & xp=$!
    app=""
    cleanup() {
      [ -n "$app" ] && kill "$app" 2>/dev/null
      in_root wineserver -k 2>/dev/null || true
      kill "$xp" 2>/dev/null; wait "$xp" 2>/dev/null
      unmount_all
    }
    trap cleanup EXIT
    for _ in $(seq 100); do DISPLAY=":$d" xdotool getdisplaygeometry >/dev/null 2>&1 && break; sleep 0.2; done
    DISPLAY=":$d" xdotool getdisplaygeometry >/dev/null 2>&1 || die "Xvfb :$d did not start"
    mountpoint -q "$R/tmp/.X11-unix" || mount --bind /tmp/.X11-unix "$R/tmp/.X11-unix"
    log=$(mktemp)
    in_root DISPLAY=":$d" bash -c 'cd /win && exec wine "$@"' wine "$exe" "$@" >"$log" 2>&1 & app=$!
    # The window first, then a frame that is no longer one flat colour
    # (Wine and Mesa start slowly on a loaded machine: up to 3 minutes).
    wid=""
    for _ in $(seq 360); do
      kill -0 "$app" 2>/dev/null || { cat "$log" >&2; die "$exe exited before its window appeared"; }
      wid=$(DISPLAY=":$d" xdotool search --onlyvisible --name '^Key Ceremony$' 2>/dev/null | head -1) && [ -n "$wid" ] && break
      sleep 0.5
    done
    [ -n "$wid" ] || { cat "$log" >&2; die "no 'Key Ceremony' window after 3 minutes"; }
    for _ in $(seq 60); do
      sleep 2
      DISPLAY=":$d" import -window "$wid" "$shot"
      [ "$(convert "$shot" -format '%k' info:)" -ge 16 ] && break
    done
    rm -f "$log"
    echo "$shot" ;;
  *) sed -n '2,25p' "$0" >&2; exit 2 ;;
esac
