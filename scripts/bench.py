"""`make bench`: performance figures measured on the RTL (cycle counts, never wall time).

    python scripts/bench.py [--only systolic,...] [--presets tiny,default] [--sim verilator]

Each bench is a module scripts/bench_<name>.py with a function
``bench(presets: list[str], sim: str) -> list[dict]`` that runs the RTL, writes
build/bench/<name>.json and prints its table. They are discovered, so adding a bench
is adding a file. Modules that only produce records for a bench are named otherwise
(``scripts/attention_soc_records.py`` and ``scripts/decode_records.py`` for
``bench_attention``).
"""
from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys

import scripts
from scripts.benchlib import BENCH

BENCHES = sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules(scripts.__path__)
                 if m.name.startswith("bench_"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", default=",".join(BENCHES), help="comma-separated: " + ", ".join(BENCHES))
    ap.add_argument("--presets", default="tiny,default")
    ap.add_argument("--sim", default="verilator", choices=["verilator", "icarus"])
    args = ap.parse_args(argv)
    BENCH.mkdir(parents=True, exist_ok=True)
    for name in args.only.split(","):
        if name not in BENCHES:
            print(f"bench: unknown bench {name!r}; known: {', '.join(BENCHES)}", file=sys.stderr)
            return 2
        importlib.import_module(f"scripts.bench_{name}").bench(args.presets.split(","), args.sim)
    return 0


if __name__ == "__main__":
    sys.exit(main())
