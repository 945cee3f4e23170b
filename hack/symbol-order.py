#!/usr/bin/env python3
"""The functions that executed (the tracer's addresses) by the names the linker knows them by,
in address order: hack/symbol-order.sh's last step.

usage: symbol-order.py LINK_MAP TRACE... > hack/symbol-order.txt
LINK_MAP is lld's -Map of the very binary the traces were taken of (addresses are its virtual
addresses). A Rust function has a section of its own, named after its symbol; glibc's objects
have one .text each, and there the symbols in it name it."""
import bisect, re, sys

link_map, traces = sys.argv[1], sys.argv[2:]
line_re = re.compile(r"\s*([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\d+(\s+)(.*)")
section_re = re.compile(r".*:\((\.text(?:\.[^)]*)?)\)$")
entries = []  # (start, end, name)
in_text = False
section = None
for line in open(link_map):
    m = line_re.match(line)
    if not m:
        continue
    start, size, rest = int(m.group(1), 16), int(m.group(2), 16), m.group(4).strip()
    depth = len(m.group(3))  # 1: an output section, 9: an input section, 17: a symbol
    if depth < 9:
        in_text = rest == ".text"
        continue
    if not in_text:
        continue
    if depth < 17:
        section = None
        s = section_re.match(rest)
        if not s:
            continue
        name = s.group(1)
        for prefix in (".text.unlikely.", ".text.hot.", ".text.startup.", ".text.exit.", ".text."):
            if name.startswith(prefix):
                entries.append((start, start + size, name[len(prefix):]))
                break
        else:
            section = (start, start + size)  # plain `.text` (C objects): its symbols name it
        continue
    if section and section[0] <= start < section[1] and re.fullmatch(r"[A-Za-z_][\w.]*", rest):
        entries.append((start, section[1], rest))
entries.sort()
starts = [e[0] for e in entries]
hit = set()
for trace in traces:
    for line in open(trace):
        address = int(line.split()[2], 16)
        i = bisect.bisect_right(starts, address) - 1
        if i >= 0 and address < entries[i][1]:
            hit.add(i)
size = sum(entries[i][1] - entries[i][0] for i in hit)
print(f"symbol-order: {len(hit)} of {len(entries)} functions, {size // 1024} KB", file=sys.stderr)
seen = set()
for i in sorted(hit):
    if entries[i][2] not in seen:
        seen.add(entries[i][2])
        print(entries[i][2])
