#!/usr/bin/env bash
# --format folded and --format svg: the collapsed stacks of the write fault's
# path, and a self-contained flame chart that headless Chromium renders to a
# screenshot with more than a background in it. Chromium (Debian's
# `chromium`) is installed if missing and possible; otherwise skipped (77).
. "$(dirname "$0")/lib.sh"
if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >"$work/apt.log" 2>&1 || true
  fi
  command -v chromium >/dev/null || { echo "SKIP: chromium is not installed and could not be installed (apt-get install chromium)"; exit 77; }
fi

f=$work/path.folded
rc=0; timeout 300 "$FAULTLINE_BIN" trace --mode fast --format folded -o "$f" || rc=$?
expect "folded: exit status" "$rc" 0
expect "folded: every line is 'a;b;c count'" "$(grep -cvE '^[^ ;]+(;[^ ;]+)* [0-9]+$' "$f" || true)" 0
expect_true "folded: do_user_addr_fault calls handle_mm_fault" grep -qE ';do_user_addr_fault;(.*;)?handle_mm_fault' "$f"
expect_true "folded: thousands of instructions in all" [ "$(awk '{s += $NF} END {print s}' "$f")" -ge 1000 ]

s=$work/path.svg
rc=0; timeout 300 "$FAULTLINE_BIN" trace --mode fast --format svg -o "$s" || rc=$?
expect "svg: exit status" "$rc" 0
expect_true "svg: well-formed XML" python3 -c 'import sys, xml.etree.ElementTree as E; E.parse(sys.argv[1])' "$s"
expect "svg: self-contained (no script, no link)" "$(grep -ciE '<script|href=|url\(' "$s" || true)" 0
expect_true "svg: hover text with file:line and counts" \
  grep -qE '<title>handle_mm_fault \(mm/memory\.c:[0-9]+\)$' "$s"
expect_true "svg: ...and its counts" grep -qE '^[0-9]+ instructions, [0-9]+ in itself' "$s"

png=$work/path.png
timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --disable-sync --no-first-run --user-data-dir="$work/chromium" \
  --screenshot="$png" --window-size=1200,800 "file://$s" >"$work/chromium.log" 2>&1 || true
expect_true "chromium rendered a screenshot" [ -s "$png" ]
# Distinct colours in the screenshot, by a small PNG decoder (zlib + the five
# row filters): a blank page has one, the chart dozens.
colours=$(python3 - "$png" <<'PY' 2>/dev/null || echo 0
import struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n'
pos, idat = 8, b''
while pos < len(data):
    n, kind = struct.unpack('>I4s', data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b'IHDR':
        w, h, depth, ctype = struct.unpack('>IIBB', body[:10])
    elif kind == b'IDAT':
        idat += body
    pos += 12 + n
assert depth == 8 and ctype in (2, 6)
bpp = 3 if ctype == 2 else 4
raw, stride, prev, seen, i = zlib.decompress(idat), w * bpp, bytearray(w * bpp), set(), 0
for y in range(h):
    f, row = raw[i], bytearray(raw[i + 1:i + 1 + stride]); i += 1 + stride
    for x in range(stride):
        a = row[x - bpp] if x >= bpp else 0
        b, c = prev[x], prev[x - bpp] if x >= bpp else 0
        if f == 1: row[x] = (row[x] + a) & 255
        elif f == 2: row[x] = (row[x] + b) & 255
        elif f == 3: row[x] = (row[x] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            row[x] = (row[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    if y % 4 == 0:
        seen.update(bytes(row[k:k + 3]) for k in range(0, stride, bpp * 2))
    prev = row
print(len(seen))
PY
)
expect_true "the screenshot is not blank ($colours colours)" [ "$colours" -ge 8 ]
[ -n "${FL_KEEP_PNG:-}" ] && cp "$png" "$FL_KEEP_PNG"
finish
