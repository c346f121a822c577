"""SoC bench: INT8 GEMMs on the chip top (`soc`) from HBM, doorbell to interrupt.

Writes build/bench/soc.json: records with preset, workload ("gemm"), tiles, M, K, N,
commands, cycles (doorbell write .. rising IRQ), array_util (useful MACs / (tiles x R x C
x cycles)), bound_cycles / limiter (models.chip_perf.gemm_roofline of the shape) and
ratio_to_bound, the compiled stream's roofline, sim and sim_cycles_per_s. Every C is
checked against models.chip and numpy (tb/soc/bench_soc.py).
"""
from __future__ import annotations

import json
import time

from scripts.benchlib import BENCH, print_table, run_records

#: [M, K, N] per preset (tiny: 64^3 needs more HBM than its 32 KiB for the ring).
SHAPES = {
    "tiny": [[16, 16, 16], [32, 32, 32], [64, 32, 64], [1, 64, 64]],
    "default": [[64, 64, 64]],
}
#: Simulator per preset overriding --sim: the default preset's `soc` is run on Icarus
#: (emission ~2 min + ~1 min of simulation for 64^3); its Verilator -Os build was not
#: tried (tiny's alone takes ~6 min on 2 shared cores).
SIM = {"default": "icarus"}


def bench(presets, sim) -> list[dict]:
    records = []
    for preset in presets:
        if preset not in SHAPES:
            continue
        t0 = time.monotonic()
        psim = SIM.get(preset, sim)
        print(f"soc: {preset} preset on {psim}: {len(SHAPES[preset])} GEMMs ...", flush=True)
        records += run_records(f"bench-soc-{preset}-{psim}", "soc", preset, psim,
                               "tb.soc.bench_soc",
                               {"JALAPENO_BENCH_SHAPES": json.dumps(SHAPES[preset])}, seed=1)
        print(f"soc: {preset} done in {time.monotonic() - t0:.0f} s", flush=True)
    (BENCH / "soc.json").write_text(json.dumps(records, indent=1))
    print_table(records, ["preset", "workload", "tiles", "M", "K", "N", "commands", "cycles",
                          "array_util", "bound_cycles", "limiter", "ratio_to_bound",
                          "stream_bound_cycles", "stream_limiter", "sim",
                          "sim_cycles_per_s"],
                "SoC, INT8 GEMMs from HBM (cycles: doorbell .. IRQ)")
    print(f"-> {BENCH / 'soc.json'}")
    return records
