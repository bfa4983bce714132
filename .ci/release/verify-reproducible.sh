#!/usr/bin/env bash
# Builds the committed tree (HEAD) twice, from two clones in different
# directories, the second with an empty Go build cache so nothing is reused,
# and compares the SHA-256 of every Linux and Windows binary.
# usage: verify-reproducible.sh VERSION
set -euo pipefail
version=${1:?usage: verify-reproducible.sh VERSION}
repo=$(git rev-parse --show-toplevel)
commit=$(git -C "$repo" rev-parse HEAD)
work=$(mktemp -d /tmp/kc-repro.XXXXXX)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT
git -C "$repo" diff --quiet HEAD -- || echo "verify-reproducible: uncommitted changes are not part of this check (it builds commit $commit)"

git clone -q "$repo" "$work/first"
git clone -q "$repo" "$work/second-build-in-a-longer-path"
echo "verify-reproducible: build 1 in $work/first (shared Go build cache)"
(cd "$work/first" && bash .ci/release/build.sh "$version" "$work/out1")
echo "verify-reproducible: build 2 in $work/second-build-in-a-longer-path (empty Go build cache)"
(cd "$work/second-build-in-a-longer-path" && GOCACHE="$work/gocache" bash .ci/release/build.sh "$version" "$work/out2")

status=0
for f in "$work/out1"/*; do
  n=$(basename "$f")
  a=$(sha256sum "$f" | cut -d' ' -f1)
  b=$(sha256sum "$work/out2/$n" 2>/dev/null | cut -d' ' -f1 || true)
  if [ "$a" = "$b" ]; then
    printf '  identical  %s  %s\n' "$a" "$n"
  else
    printf '  DIFFERENT  %s\n    build 1 %s\n    build 2 %s\n' "$n" "$a" "${b:-missing}"
    cmp -l "$f" "$work/out2/$n" 2>/dev/null | head -5 || true
    status=1
  fi
done
[ "$(ls "$work/out1" | wc -l)" -eq 3 ] || { echo "verify-reproducible: expected 3 binaries, got: $(ls "$work/out1")"; status=1; }
if [ $status -eq 0 ]; then
  echo "verify-reproducible: PASS: commit $commit builds byte-identical Linux and Windows binaries"
else
  echo "verify-reproducible: FAIL: the builds differ"
fi
exit $status
