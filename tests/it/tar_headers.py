#!/usr/bin/env python3
"""Python's tarfile as an oracle of ocislim's squashed layer headers.

Usage: tar_headers.py [--clamp T] INPUT_LAYER... -- OUTPUT_LAYER

Layers are tar files, gzip-compressed or not. The input layers are merged by name, the
last one winning (the tests give it no whiteouts or hard links). Then:
- the output holds exactly the merged names;
- without --clamp, each output entry is byte for byte the input's (from its first
  extension header to the end of its data padding): names with `./`, PAX records (paths,
  link paths, sub-second times, xattrs, uname/gname) are copied, not re-encoded;
- with --clamp T, each entry equals the input's in every field but its times, its
  header and PAX mtime/atime/ctime are at most T, and times already at most T stay.
Prints a one-line summary; any difference is printed and exits 1.
"""
import gzip
import sys
import tarfile
from decimal import Decimal

TIMES = ("mtime", "atime", "ctime")


def load(path):
    data = open(path, "rb").read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    entries = {}
    with tarfile.open(fileobj=__import__("io").BytesIO(data)) as t:
        for m in t.getmembers():
            end = m.offset_data + (m.size + 511) // 512 * 512 if m.isreg() else m.offset_data
            key = m.name[2:] if m.name.startswith("./") else m.name
            key = "" if key == "." else key
            body = t.extractfile(m).read() if m.isreg() else b""
            entries[key] = (m, data[m.offset:end], body)
    return entries


def fields(m, body):
    pax = {k: v for k, v in m.pax_headers.items() if k not in TIMES}
    return (m.name, m.type, m.linkname, m.size, m.mode, m.uid, m.gid, m.uname, m.gname,
            m.devmajor, m.devminor, sorted(pax.items()), body)


def main(argv):
    clamp = None
    if argv[:1] == ["--clamp"]:
        clamp = Decimal(argv[1])
        argv = argv[2:]
    split = argv.index("--")
    merged = {}
    for layer in argv[:split]:
        merged.update(load(layer))
    out = load(argv[split + 1])
    bad = []
    if sorted(out) != sorted(merged):
        bad.append(f"names differ: only in input {sorted(set(merged) - set(out))}, "
                   f"only in output {sorted(set(out) - set(merged))}")
    raw = changed = 0
    for name in sorted(set(out) & set(merged)):
        (m, mraw, mbody), (o, oraw, obody) = merged[name], out[name]
        if clamp is None:
            if oraw != mraw:
                bad.append(f"{name!r}: header or data bytes differ")
            raw += 1
            continue
        if fields(o, obody) != fields(m, mbody):
            diffs = [(a, b) for a, b in zip(fields(m, mbody), fields(o, obody)) if a != b]
            bad.append(f"{name!r}: fields other than times differ (input, output): {diffs}")
        want = {"header": int(min(Decimal(m.mtime), clamp))}
        got = {"header": int(o.mtime)}
        for k in TIMES:
            if k in m.pax_headers:
                v = Decimal(m.pax_headers[k])
                want[k] = v if v <= clamp else clamp
                got[k] = Decimal(o.pax_headers[k]) if k in o.pax_headers else None
        if want != got:
            bad.append(f"{name!r}: times {got} are not {want}")
        if oraw == mraw:
            raw += 1
        else:
            changed += 1
    for b in bad:
        print(b, file=sys.stderr)
    print(f"{len(out)} entries: {raw} byte-identical, {changed} with clamped times")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
