#!/usr/bin/env python3
"""Prints criterion's median estimates of a benchmark group as a Markdown table.

    python3 scripts/bench-table.py route          # after cargo bench -p mesh-benches --bench router
"""
import json
import pathlib
import sys

root = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"
group = sys.argv[1]


def fmt(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


rows = {}
params = []
for est in sorted((root / group).glob("*/*/new/estimates.json")):
    name, param = est.parts[-4], est.parts[-3]
    median = json.loads(est.read_text())["median"]["point_estimate"]
    rows.setdefault(name, {})[param] = median
    if param not in params:
        params.append(param)
params.sort(key=lambda p: (len(p), p))
print("| " + group + " | " + " | ".join(params) + " |")
print("|---" * (len(params) + 1) + "|")
for name, values in rows.items():
    print("| " + name + " | " + " | ".join(fmt(values[p]) if p in values else "—" for p in params) + " |")
