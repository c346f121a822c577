"""SoC bench: GEMMs and attention heads on the chip top (`soc`) from HBM, doorbell to IRQ.

Writes build/bench/soc.json: one record per program with preset, workload ("gemm" or
"attention"), tiles, the shape (M, K, N or heads, seq, head_dim), commands, cycles
(doorbell write .. rising IRQ, measured on the RTL), array_util (useful MACs / (tiles x R
x C x cycles); attention counts the MACs fed to the arrays), bound_cycles / limiter /
ratio_to_bound (``models.chip_perf``: the GEMM shape's roofline, the attention stream's),
the HBM bandwidth used, per-unit busy shares from the perf counters, sim and
sim_cycles_per_s (simulator speed while the host waits for the interrupt: no Python per
cycle). All programs of a preset run in one simulator process
(``models.rtl_backend.run_rtl``); every result is checked bit for bit against the golden
chip model and GEMMs also against int64 numpy, so no figure comes from a wrong result.
"""
from __future__ import annotations

import json
import time

import numpy as np

from models.config import get_preset
from models.rtl_backend import run_rtl
from models.runtime import prepare_attention, prepare_gemm
from scripts.benchlib import BENCH, print_table
from scripts.demo_report import matmul_bound, summarize_program

#: GEMM shapes [M, K, N] per preset: compute-bound ones, and 1 x K x N (a GEMV:
#: HBM-bound, every weight byte used once).
GEMMS = {
    "tiny": [[16, 16, 16], [32, 32, 32], [64, 32, 64], [1, 64, 64]],
    "default": [[64, 64, 64], [512, 512, 512], [1, 512, 512]],
}
#: Attention [heads, seq, head_dim] per preset (causal, INT8 path, one head per tile).
ATTENTION = {
    "tiny": [[2, 16, 8]],
    "default": [[4, 128, 64]],
}


def _jobs(cfg, rng):
    out = []
    for m, k, n in GEMMS[cfg.name]:
        a = rng.integers(-128, 128, (m, k), dtype=np.int64)
        b = rng.integers(-128, 128, (k, n), dtype=np.int64)
        out.append(("gemm", (a, b), prepare_gemm(a, b, config=cfg)))
    for h, s, d in ATTENTION[cfg.name]:
        qkv = tuple(rng.standard_normal((h, s, d)) for _ in range(3))
        out.append(("attention", qkv, prepare_attention(*qkv, "causal", config=cfg)))
    return out


def _record(cfg, kind, inputs, prep, r) -> dict:
    if kind == "gemm":
        a, b = inputs
        run = prep.finish(r.result, "rtl", r)
        ref = prep.run("model")
        assert np.array_equal(run.raw, ref.raw), f"{a.shape}x{b.shape}: C differs from models.chip"
        assert np.array_equal(run.c, (a @ b).astype(np.int32)), "C differs from int64 numpy"
        p = run.plan
        rec = summarize_program(cfg, run, run.commands, p.m * p.k * p.n)
        rl = run.shape_roofline        # the shape's bound, whatever the blocking
        rec |= {"M": p.m, "K": p.k, "N": p.n, "bound_cycles": rl.bound_cycles,
                "limiter": rl.limiter, "ratio_to_bound": round(rl.bound_cycles / run.cycles, 4),
                "stream_bound_cycles": run.roofline.bound_cycles,
                "stream_limiter": run.roofline.limiter}
    else:
        run = prep.finish(r.result, "rtl", r)
        ref = prep.run("model")
        assert np.array_equal(run.o.view(np.uint32), ref.o.view(np.uint32)), \
            "attention O differs from models.chip"
        cmds = run.job.commands
        hp = run.heads[0].problem
        rec = summarize_program(cfg, run, cmds, run.roofline.macs)
        mb = matmul_bound(cfg, cmds)
        rec |= {"heads": len(run.heads), "seq": hp.seq_q, "head_dim": hp.head_dim,
                "matmul_bound_cycles": mb, "cycles_over_matmul_bound": round(run.cycles / mb, 3)}
    return {"preset": cfg.name, "workload": kind, "tiles": cfg.soc.tiles,
            "rows": cfg.systolic.rows, "cols": cfg.systolic.cols, **rec,
            "checked": True, "sim": r.sim_run.sim}


def bench(presets, sim) -> list[dict]:
    records = []
    for preset in presets:
        if preset not in GEMMS:
            continue
        cfg = get_preset(preset)
        jobs = _jobs(cfg, np.random.default_rng(1))
        t0 = time.monotonic()
        print(f"soc: {preset} preset on {sim}: {len(jobs)} programs (the chip's build takes "
              f"minutes on first use) ...", flush=True)
        runs = run_rtl(cfg, [p.rtl_job() for _, _, p in jobs], sim=sim, seed=1)
        records += [_record(cfg, kind, inputs, prep, r)
                    for (kind, inputs, prep), r in zip(jobs, runs)]
        print(f"soc: {preset} done in {time.monotonic() - t0:.0f} s", flush=True)
    (BENCH / "soc.json").write_text(json.dumps(records, indent=1))
    print_table([r for r in records if r["workload"] == "gemm"],
                ["preset", "tiles", "M", "K", "N", "commands", "cycles", "array_util",
                 "bound_cycles", "limiter", "ratio_to_bound", "stream_bound_cycles",
                 "hbm_bw_util", "sim", "sim_cycles_per_s"],
                "SoC GEMMs from HBM (cycles: doorbell .. IRQ; bound: the shape's roofline)")
    print_table([r for r in records if r["workload"] == "attention"],
                ["preset", "tiles", "heads", "seq", "head_dim", "commands", "cycles",
                 "matmul_bound_cycles", "cycles_over_matmul_bound", "bound_cycles", "limiter",
                 "sim", "sim_cycles_per_s"],
                "SoC attention heads from HBM (causal, INT8; bound: the stream's roofline)")
    print(f"-> {BENCH / 'soc.json'}")
    return records
