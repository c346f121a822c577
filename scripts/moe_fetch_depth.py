"""Program-2 cycles per command of a small MoE layer on the default SoC RTL at a given
ring-fetch depth (docs/moe.md, "Command issue"): the measurement behind
``default``'s ``soc.fetch_depth = 32``.

Usage: ``PYTHONPATH=. .venv/bin/python scripts/moe_fetch_depth.py 16 32`` (one Verilator
build per depth, ~15 min each on 2 cores). Layer: 128 tokens, d_model 128, d_ff 256,
8 experts, top-2, uniform router, ``random_moe`` seed 15; bit-exact check included.
"""
from __future__ import annotations

import sys
from dataclasses import replace

import numpy as np

from models import moe
from models.config import get_preset
from models.runtime_moe import run_moe


def measure(fetch_depth: int) -> dict:
    """Cycles of both programs and program 2's cycles per command at ``fetch_depth``."""
    p = moe.MoeProblem(128, 128, 256, 8, 2, 1.25, "drop")
    x, r, ex = moe.random_moe(p, np.random.default_rng(15), router="uniform")
    inputs, weights = moe.quantize_moe(x, r, ex)
    cfg = get_preset("default")
    cfg = replace(cfg, soc=replace(cfg.soc, fetch_depth=fetch_depth))
    run = run_moe(p, inputs, weights, config=cfg, backend="rtl", sim="verilator", seed=15)
    macs = moe.macs(p, run.chip.counts["tokens_per_expert"])
    sa = cfg.systolic
    return {"fetch_depth": fetch_depth, "cycles": list(run.cycles),
            "commands": [len(c) for c in run.programs],
            "p2_cycles_per_command": round(run.cycles[1] / len(run.programs[1]), 2),
            "array_util": round(macs / (sum(run.cycles) * cfg.soc.tiles * sa.rows * sa.cols), 4)}


def main(argv=None) -> int:
    for d in [int(a) for a in (argv if argv is not None else sys.argv[1:]) or ["32"]]:
        print(measure(d), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
