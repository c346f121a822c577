"""Systolic-array bench: INT8 GEMM cycle counts measured on the RTL (Verilator).

Writes build/bench/systolic.json: records with preset, rows, cols, M, K, N, cycles,
utilization, scalesim_cycles, ratio_vs_scalesim, model_cycles, ideal_cycles, folds.
"""
from __future__ import annotations

import json
import time

from scripts.benchlib import BENCH, print_table, run_records

SYSTOLIC_SHAPES = [(64, 64, 64), (128, 64, 32), (256, 256, 256), (1, 256, 256), (32, 512, 32)]


def run_systolic_shapes(preset: str, shapes, *, sim: str = "verilator", seed: int = 1,
                        tag: str = "bench") -> list[dict]:
    """Run the bench cocotb module for ``shapes`` on ``preset``; return its records."""
    return run_records(f"{tag}-systolic-{preset}-{sim}", "systolic_array", preset, sim,
                       "tb.systolic.bench_systolic",
                       {"JALAPENO_BENCH_SHAPES": json.dumps([list(s) for s in shapes])},
                       seed=seed)


def bench(presets, sim) -> list[dict]:
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


