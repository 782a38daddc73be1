#!/usr/bin/env python3
"""Compares two JUnit reports of llama.cpp's server test suite: llama-server's and ours.

Prints per-file pass counts and every test that passes on llama-server and fails on ours.
Tests listed in docs/COMPATIBILITY.md (a table row whose first cell is a backticked test id or
fnmatch pattern and whose second cell is `deliberate`, `unavailable` or `other issue`) are
reported apart and not counted as gaps. Exit status 1 when uncounted gaps remain.

usage: compare.py REF.xml OURS.xml COMPATIBILITY.md [DROPPED_FLAGS.txt]
"""
import collections
import fnmatch
import re
import sys
import xml.etree.ElementTree as ET

KINDS = ("deliberate", "unavailable", "other issue")


def results(path):
    """{test id: passed} with ids as `file.py::test[param]`."""
    out = {}
    for case in ET.parse(path).iter("testcase"):
        file = case.get("classname", "").split(".")[-1] + ".py"
        tid = f"{file}::{case.get('name')}"
        bad = any(c.tag in ("failure", "error") for c in case)
        skipped = any(c.tag == "skipped" for c in case)
        out[tid] = None if skipped else not bad
    return out


def listed(doc):
    rows = []
    for line in open(doc, encoding="utf-8"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 3 or not cells[0].startswith("`"):
            continue
        kind = cells[1].lower()
        if kind in KINDS:
            for pat in re.findall(r"`([^`]+::[^`]*)`", cells[0]):
                rows.append((pat, kind, cells[2]))
    return rows


def main():
    ref, ours = results(sys.argv[1]), results(sys.argv[2])
    rows = listed(sys.argv[3])
    per_file = collections.defaultdict(lambda: [0, 0, 0])
    gaps, explained = [], collections.defaultdict(list)
    for tid in sorted(set(ref) | set(ours)):
        f = tid.split("::")[0]
        per_file[f][0] += 1
        per_file[f][1] += ref.get(tid) is True
        per_file[f][2] += ours.get(tid) is True
        if ref.get(tid) is True and ours.get(tid) is not True:
            # A row names a test exactly (parametrized ids hold brackets) or by pattern.
            why = next(
                ((k, r) for p, k, r in rows if tid == p or fnmatch.fnmatchcase(tid, p)), None
            )
            if why:
                explained[why[0]].append((tid, why[1]))
            else:
                gaps.append(tid)
    print(f"{'file':34} {'tests':>5} {'llama-server':>12} {'ours':>5}")
    tot = [0, 0, 0]
    for f, (n, r, o) in sorted(per_file.items()):
        print(f"{f:34} {n:5} {r:12} {o:5}")
        tot = [tot[0] + n, tot[1] + r, tot[2] + o]
    print(f"{'total':34} {tot[0]:5} {tot[1]:12} {tot[2]:5}")
    only_ours = sorted(t for t in ours if ours[t] is True and ref.get(t) is not True)
    print(f"\npass on ours only: {len(only_ours)}")
    for t in only_ours:
        print(f"  {t}")
    for kind in KINDS:
        items = explained.get(kind, [])
        print(f"\npass on llama-server, fail on ours, listed as {kind} in COMPATIBILITY.md: {len(items)}")
        for t, r in items:
            print(f"  {t}  ({r})")
    print(f"\npass on llama-server, fail on ours, NOT explained: {len(gaps)}")
    for t in gaps:
        print(f"  {t}")
    if len(sys.argv) > 4:
        try:
            flags = collections.Counter(l.split()[0] for l in open(sys.argv[4]) if l.strip())
        except FileNotFoundError:
            flags = {}
        print(f"\nllama-server flags `serve` does not take (dropped by the wrapper): {len(flags)}")
        for f, n in sorted(flags.items()):
            print(f"  {f} ({n} starts)")
    return 1 if gaps else 0


if __name__ == "__main__":
    sys.exit(main())
