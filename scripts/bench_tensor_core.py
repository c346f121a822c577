"""Tensor-core bench: GEMM tile sequences measured on the RTL (Verilator).

Writes build/bench/tensor_core.json: records with preset, rows, cols, M, K, N, mode,
cmds, cycles (first command accepted .. idle), model_cycles (models.tensor_core.
matmul_cycles) and their ratio, compute_bound (activation vectors), utilization
(useful MACs / (R * C * cycles)), array_busy (fraction of cycles the array accepted an
activation vector, from the perf counter), scalesim_cycles and the ratio to it.
"""
from __future__ import annotations

import json
import time

from scripts.benchlib import BENCH, print_table, run_records

#: [M, K, N, fp8] per preset; every GEMM fits the preset's SRAMs in one piece.
SHAPES = {
    "tiny": [[64, 64, 64, 0], [256, 16, 16, 0], [4, 64, 64, 0], [1, 64, 16, 0],
             [64, 64, 64, 1], [3, 32, 32, 1]],
    "default": [[128, 256, 128, 0], [512, 64, 64, 0], [16, 128, 256, 0], [1, 256, 128, 0]],
}


def bench(presets, sim) -> list[dict]:
    records = []
    for preset in presets:
        if preset not in SHAPES:
            continue
        t0 = time.monotonic()
        print(f"tensor_core: {preset} preset on {sim}: {len(SHAPES[preset])} GEMMs ...", flush=True)
        records += run_records(f"bench-tensor_core-{preset}-{sim}", "tensor_core", preset, sim,
                               "tb.tensor.bench_tensor_core",
                               {"JALAPENO_BENCH_SHAPES": json.dumps(SHAPES[preset])}, seed=1)
        print(f"tensor_core: {preset} done in {time.monotonic() - t0:.0f} s", flush=True)
    (BENCH / "tensor_core.json").write_text(json.dumps(records, indent=1))
    print_table(records, ["preset", "rows", "cols", "M", "K", "N", "mode", "cmds", "cycles",
                          "model_cycles", "ratio_to_model", "compute_bound", "utilization",
                          "array_busy", "scalesim_cycles", "ratio_vs_scalesim",
                          "sim_cycles_per_s"],
                "Tensor core, GEMM tile sequences (cycles: first command accepted .. idle)")
    print(f"-> {BENCH / 'tensor_core.json'}")
    return records
