"""`make bench`: performance figures measured on the RTL (cycle counts, never wall time).

    python scripts/bench.py [--only systolic] [--presets tiny,default] [--sim verilator]

systolic: GEMM shapes (M, K, N) on each preset's array with Verilator; writes
build/bench/systolic.json (records: preset, rows, cols, M, K, N, cycles, utilization,
scalesim_cycles, ratio_vs_scalesim, model_cycles, ...) and prints a table.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tb.runner import BUILD, run

SYSTOLIC_SHAPES = [(64, 64, 64), (128, 64, 32), (256, 256, 256), (1, 256, 256), (32, 512, 32)]
BENCH = BUILD / "bench"


def print_table(records: list[dict], cols: list[str], title: str) -> None:
    print(f"\n{title}")
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in records)) for c in cols}
    print("  ".join(c.rjust(widths[c]) for c in cols))
    for r in records:
        print("  ".join(_fmt(r.get(c)).rjust(widths[c]) for c in cols))


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}"
    return "" if v is None else str(v)


def run_systolic_shapes(preset: str, shapes, *, sim: str = "verilator", seed: int = 1,
                        tag: str = "bench") -> list[dict]:
    """Run the bench cocotb module for ``shapes`` on ``preset``; return its records."""
    out = BENCH / f".{tag}-systolic-{preset}-{sim}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("")
    res = run("systolic_array", preset, sim, "tb.systolic.bench_systolic", seed=seed,
              extra_env={"JALAPENO_BENCH_SHAPES": json.dumps([list(s) for s in shapes]),
                         "JALAPENO_BENCH_OUT": str(out)})
    if not res.ok:
        raise RuntimeError(res.summary())
    return [json.loads(line) for line in out.read_text().splitlines() if line.strip()]


def bench_systolic(presets, sim) -> list[dict]:
    records = []
    for preset in presets:
        t0 = time.monotonic()
        print(f"systolic: {preset} preset on {sim}: {len(SYSTOLIC_SHAPES)} GEMMs ...", flush=True)
        records += run_systolic_shapes(preset, SYSTOLIC_SHAPES, sim=sim)
        print(f"systolic: {preset} done in {time.monotonic() - t0:.0f} s", flush=True)
    (BENCH / "systolic.json").write_text(json.dumps(records, indent=1))
    print_table(records, ["preset", "rows", "cols", "M", "K", "N", "folds", "cycles",
                          "model_cycles", "scalesim_cycles", "ratio_vs_scalesim", "utilization",
                          "sim_cycles_per_s"],
                "Systolic array, INT8 GEMM (cycles: first input accepted .. last result out)")
    print(f"-> {BENCH / 'systolic.json'}")
    return records


BENCHES = {"systolic": bench_systolic}


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
        BENCHES[name](args.presets.split(","), args.sim)
    return 0


if __name__ == "__main__":
    sys.exit(main())
