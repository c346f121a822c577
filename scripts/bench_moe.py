"""MoE bench (issue 15): one MoE FFN layer on the SoC RTL, both programs.

    make bench BENCH=moe                      # tiny and default (the issue's shape)
    PYTHONPATH=. python scripts/bench_moe.py --presets default --cases uniform
    PYTHONPATH=. python scripts/bench_moe.py --backend model   # programs on the chip model

Each case builds a random layer (``models.moe.random_moe``, seed 15), runs program 1
(routing + DISPATCH) and program 2 (experts + combine) through
``models.runtime_moe.run_moe`` (two simulator runs, the HBM image of the first feeding
the second), compares every table and the output bit for bit with
``models.moe.moe_forward`` and writes build/bench/moe.json, one record per case:

``preset, tokens, d_model, d_ff, experts, top_k, capacity_factor, overflow, router``
(``"uniform"`` / ``"skewed"``), ``split``, ``hbm_bytes`` (the HBM of the widened
preset), ``cycles`` (program 1 + program 2, doorbell -> IRQ each), ``cycles_routing``,
``cycles_experts``, ``array_util`` (useful MACs / (cycles x tiles x R x C)),
``bound_cycles`` (``models.moe_perf.layer_bound(...).overlapped_cycles``, the vector unit
beside the array) and ``bound_fenced``, ``util_at_bound``, ``dropped``,
``tokens_per_expert``, ``pieces`` (expert pieces placed), ``commands`` (both rings),
``cosine`` (worst token against ``models.moe.reference``), ``bit_exact`` (RTL vs model:
ranking, weights, dispatch tables, counters, y, out), per-tile busy shares of program
2 (``units``), ``sim_cycles_per_s``, ``backend``.

``default`` has 2 MiB of HBM; the layer at 256 x 256 x 1024 x 8 experts needs ~6.3 MB
(weights 4 MiB, x, tables, y, out, the two rings): :func:`widened` doubles
``hbm.channel_bytes`` until the layer plus room for 200,000 commands fits, which gives
8 MiB channels (32 MiB; ``hbm_bytes`` in the records; a separate RTL build; the size
does not change the timing: the same interleave, no row-miss model on ``default``).
Each default case loads the ~5-6 MB image (from address 0 to the ring's end) through the
backdoor twice (one word per simulated cycle) and runs ~0.3-0.6 M cycles, ~30-40 min
per case on Verilator; the wall-clock limit is raised to 7200 s unless
``JALAPENO_WALL_LIMIT`` is set.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import replace

import numpy as np

from models import moe
from models.config import get_preset
from models.moe_perf import layer_bound
from models.runtime_moe import compare, run_moe
from scripts.benchlib import BENCH, print_table

__all__ = ["CASES", "bench", "moe_records", "widened"]

SEED = 15
#: Per preset: (name, (tokens, d_model, d_ff, experts, top_k), capacity factor, overflow,
#: router, split).
CASES = {
    "tiny": [("uniform", (32, 8, 16, 4, 2), 1.25, "drop", "uniform", True),
             ("skewed", (32, 8, 16, 4, 2), 1.0, "reroute", "skewed", True)],
    "default": [("uniform", (256, 256, 1024, 8, 2), 1.25, "drop", "uniform", True),
                ("skewed_split", (256, 256, 1024, 8, 2), 4.0, "drop", "skewed", True),
                ("skewed_whole", (256, 256, 1024, 8, 2), 4.0, "drop", "skewed", False)],
}
COLS = ["preset", "router", "split", "tokens", "d_ff", "experts", "top_k", "dropped",
        "pieces", "cycles_routing", "cycles_experts", "cycles", "bound_cycles",
        "array_util", "util_at_bound", "cosine", "bit_exact"]


def widened(preset: str, problem: moe.MoeProblem):
    """The preset, with ``hbm.channel_bytes`` doubled until the layer fits (weights,
    x, tables, y, out and, off ``tiny``, room for 200,000 commands of ring)."""
    cfg = get_preset(preset)
    p = problem
    need = (2 * p.experts * p.d_model * p.d_ff + p.tokens * p.d_model * 5
            + (p.assignments + 1) * p.d_model * 4 + 64 * 200_000 * (preset != "tiny"))
    while cfg.hbm.total_bytes < need:
        cfg = replace(cfg, hbm=replace(cfg.hbm, channel_bytes=2 * cfg.hbm.channel_bytes))
    return cfg


def _units(cfg, rtl) -> list[dict]:
    cnt, cyc = rtl.counters, rtl.cycles
    return [{"tile": t, "array_busy": round(cnt[f"TILE[{t}].COMPUTE_BUSY"] / cyc, 3),
             "dma_load_busy": round(cnt[f"TILE[{t}].LOAD_BUSY"] / cyc, 3),
             "tokens_waited": cnt[f"TILE[{t}].TOKENS_WAITED"]}
            for t in range(cfg.soc.tiles)]


def _record(preset: str, case: tuple, backend: str, sim: str) -> dict:
    name, shape, cf, overflow, router, split = case
    p = moe.MoeProblem(*shape, cf, overflow)
    x, r, ex = moe.random_moe(p, np.random.default_rng(SEED), router=router)
    inputs, weights = moe.quantize_moe(x, r, ex)
    cfg = widened(preset, p)
    run = run_moe(p, inputs, weights, config=cfg, backend=backend, sim=sim, seed=SEED,
                  split=split, check=False)
    tpe = run.chip.counts["tokens_per_expert"]
    bound = layer_bound(cfg, p, tpe, split=split)
    ref = moe.reference(p, inputs, weights)[0]
    sa = cfg.systolic
    rec = {"preset": preset, "case": name, "tokens": p.tokens, "d_model": p.d_model,
           "d_ff": p.d_ff, "experts": p.experts, "top_k": p.top_k, "capacity_factor": cf,
           "overflow": overflow, "router": router, "split": split,
           "hbm_bytes": cfg.hbm.total_bytes, "dropped": run.chip.counts["dropped"],
           "tokens_per_expert": [int(n) for n in tpe],
           "pieces": sum(len(ps) for ps in run.placement),
           "commands": [len(c) for c in run.programs],
           "bound_cycles": round(bound.overlapped_cycles),
           "bound_fenced": round(bound.fenced_cycles),
           "util_at_bound": round(bound.util(bound.overlapped_cycles), 4),
           "macs": bound.macs,
           "cosine": round(moe.accuracy(run.chip.out, ref)["min_cosine"], 6),
           "bit_exact": compare(run.model, run.chip, run.plan) == [],
           "backend": backend}
    if backend == "rtl":
        cyc = run.total_cycles
        rec.update(cycles=cyc, cycles_routing=run.cycles[0], cycles_experts=run.cycles[1],
                   array_util=round(bound.macs / (cyc * cfg.soc.tiles * sa.rows * sa.cols), 4),
                   units=_units(cfg, run.rtl[1]), sim=sim,
                   sim_cycles_per_s=[x.sim_cycles_per_s for x in run.rtl])
    return rec


def moe_records(presets, sim: str = "verilator", *, backend: str = "rtl",
                cases=None) -> list[dict]:
    """Records of every case of ``presets`` (``cases``: names to keep)."""
    if backend == "rtl" and any(p != "tiny" for p in presets):
        os.environ.setdefault("JALAPENO_WALL_LIMIT", "7200")
    out = []
    for preset in presets:
        for case in CASES.get(preset, []):
            if cases and case[0] not in cases:
                continue
            t0 = time.monotonic()
            out.append(_record(preset, case, backend, sim))
            out[-1]["wall_s"] = round(time.monotonic() - t0)
            print(f"bench moe: {preset} {case[0]}: {out[-1].get('cycles')} cycles, "
                  f"bit_exact {out[-1]['bit_exact']} ({out[-1]['wall_s']} s)", flush=True)
    return out


def _write(recs: list[dict], merge: bool = False) -> None:
    """build/bench/moe.json; ``merge``: keep the records of other (preset, case, backend)
    already there (a run of a few ``--cases``)."""
    BENCH.mkdir(parents=True, exist_ok=True)
    path = BENCH / "moe.json"
    if merge and path.exists():
        key = lambda r: (r["preset"], r["case"], r["backend"])  # noqa: E731
        new = {key(r) for r in recs}
        recs = [r for r in json.loads(path.read_text()) if key(r) not in new] + recs
    path.write_text(json.dumps(recs, indent=1))
    print_table(recs, COLS, "MoE layer on the SoC RTL (cycles: doorbell -> IRQ per program)")
    print(f"-> {BENCH / 'moe.json'}")


def bench(presets: list[str], sim: str) -> list[dict]:
    """``make bench BENCH=moe``: every case of ``presets`` on the RTL."""
    recs = moe_records(presets, sim)
    _write(recs)
    return recs


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--presets", default="tiny,default")
    ap.add_argument("--sim", default="verilator", choices=["verilator", "icarus"])
    ap.add_argument("--backend", default="rtl", choices=["rtl", "model"])
    ap.add_argument("--cases", default="", help="comma-separated case names (default all)")
    args = ap.parse_args(argv)
    recs = moe_records(args.presets.split(","), args.sim, backend=args.backend,
                       cases=[c for c in args.cases.split(",") if c])
    _write(recs, merge=bool(args.cases))
    return 0 if all(r["bit_exact"] for r in recs) else 1


if __name__ == "__main__":
    sys.exit(main())
