"""Compare two sets of bench results (build/bench/*.json) record by record.

    python scripts/compare_bench.py OLD_DIR NEW_DIR [--only systolic,dma]

Used to show that a change leaves every measured figure as it was (or to list what
moved). Records are matched in order within each bench; fields that vary from run to
run (seed, simulator speed, wall time) are ignored, every other field must be equal.
Exit status 1 if any record differs or a bench has a different number of records.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

#: Fields that change between two runs of the same RTL (not results).
VOLATILE = {"seed", "sim", "sim_cycles_per_s", "wall_s", "tb_loop_cycles", "seconds"}


def load(path: Path) -> list[dict]:
    data = json.loads(path.read_text())
    return data["records"] if isinstance(data, dict) else data


def compare(old: list[dict], new: list[dict]) -> list[str]:
    """Human-readable differences (empty if identical)."""
    diffs = []
    if len(old) != len(new):
        diffs.append(f"{len(old)} records before, {len(new)} after")
    for i, (a, b) in enumerate(zip(old, new)):
        for k in sorted((a.keys() | b.keys()) - VOLATILE):
            if a.get(k) != b.get(k):
                diffs.append(f"record {i}: {k}: {a.get(k)!r} -> {b.get(k)!r}")
    return diffs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("old", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--only", default="", help="comma-separated bench names")
    args = ap.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or sorted(
        p.stem for p in args.old.glob("*.json") if (args.new / p.name).exists())
    bad = 0
    print(f"{'bench':24s} {'records':>8s} {'identical':>9s}")
    for name in names:
        old, new = load(args.old / f"{name}.json"), load(args.new / f"{name}.json")
        diffs = compare(old, new)
        same = sum(1 for a, b in zip(old, new) if not compare([a], [b]))
        print(f"{name:24s} {len(new):8d} {same:9d}")
        for d in diffs[:20]:
            print(f"    {d}")
        bad |= bool(diffs)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
