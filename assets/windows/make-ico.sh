#!/usr/bin/env bash
# Regenerates assets/windows/keyceremony.ico from assets/icon.png (run by hand
# when the icon changes; the .ico is committed so release builds need no image
# tools and stay reproducible). Each size is an 8-bit RGBA PNG without
# timestamps, packed into an ICO container (PNG entries: Windows Vista and newer).
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
sizes=(256 48 32 16)
for s in "${sizes[@]}"; do
  convert ../icon.png -resize "${s}x${s}" -depth 8 -strip -define png:exclude-chunks=date,time "PNG32:$tmp/$s.png"
done
python3 - "$tmp" "${sizes[@]}" <<'PY'
import struct, sys
tmp, sizes = sys.argv[1], [int(s) for s in sys.argv[2:]]
pngs = [open(f"{tmp}/{s}.png", "rb").read() for s in sizes]
out = struct.pack("<HHH", 0, 1, len(pngs))
offset = 6 + 16 * len(pngs)
for s, p in zip(sizes, pngs):
    out += struct.pack("<BBBBHHII", s % 256, s % 256, 0, 0, 1, 32, len(p), offset)
    offset += len(p)
open("keyceremony.ico", "wb").write(out + b"".join(pngs))
PY
