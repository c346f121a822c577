"""Attention prefill on the SoC RTL: cycles of whole heads through the runtime.

:func:`prefill_records` runs heads with ``models.runtime.run_attention(backend="rtl")``
(the streamed schedule: query blocks over every tile, K / V streamed from HBM,
ping-pong with ``indep``), checks O against the golden chip model bit for bit, and
returns one record per head::

    preset, path, seq, head_dim, causal, phase="prefill", cycles, matmul_bound,
    ratio_to_bound, model_bound (the command stream's roofline: array + vector time of
    the busiest tile, HBM, NoC), commands, query_block, key_group, blocks_per_unit,
    compute_busy / load_busy / store_busy (mean over tiles of the busy share),
    sim_cycles_per_s, wall_s

``matmul_bound`` is the head's useful MACs (the MATMULs the program issues: causal heads
block-granular) over ``tiles x R x C`` per cycle.

Run one head at a time (a 1024 x 1024 x 64 head on default is ~10^5..10^6 cycles at
~1.5 k cycles/s on Verilator)::

    PYTHONPATH=. .venv/bin/python scripts/attention_soc_records.py default verilator \
        1024:64:0 1024:64:1 --out build/bench/attention_prefill.json
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from models.chip_perf import peaks
from models.config import get_preset

__all__ = ["prefill_records", "prefill_record"]


def prefill_record(preset: str, sim: str, seq: int, head_dim: int, causal: bool, *,
                   path: str = "int8", seed: int = 1, **stream_kw) -> dict:
    """Run one ``seq x seq x head_dim`` head on the SoC RTL; its record (module docstring).
    Raises AssertionError if O differs from the golden chip model's."""
    from models.runtime import prepare_attention
    cfg = get_preset(preset)
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal((seq, head_dim)) for _ in range(3))
    prep = prepare_attention(q, k, v, "causal" if causal else None, config=cfg, path=path,
                             **stream_kw)
    model = prep.run("model")
    t0 = time.time()
    rtl = prep.run("rtl", sim=sim, seed=seed)
    wall = time.time() - t0
    assert np.array_equal(rtl.o.view(np.uint32), model.o.view(np.uint32)), \
        f"{preset} {seq}x{head_dim} causal={causal}: RTL O differs from the chip model"
    macs = rtl.roofline.macs
    bound = macs / peaks(cfg).macs_per_cycle
    sp = prep.job.heads[0].plan
    T = cfg.soc.tiles

    def share(name):
        return sum(rtl.rtl.counters.get(f"TILE[{t}].{name}", 0) for t in range(T)) / \
            (T * rtl.cycles)
    return {"preset": preset, "path": path, "seq": seq, "head_dim": head_dim,
            "causal": causal, "phase": "prefill", "sim": sim, "cycles": rtl.cycles,
            "matmul_bound": bound, "ratio_to_bound": rtl.cycles / bound,
            "model_bound": rtl.roofline.bound_cycles, "commands": len(prep.commands),
            "query_block": sp.mq, "key_group": sp.g, "blocks_per_unit": sp.nb,
            "indep": sp.indep, "compute_busy": share("COMPUTE_BUSY"),
            "load_busy": share("LOAD_BUSY"), "store_busy": share("STORE_BUSY"),
            "sim_cycles_per_s": rtl.sim_cycles_per_s, "wall_s": wall, "seed": seed}


def prefill_records(preset: str, sim: str, heads, **kw) -> list[dict]:
    """Records of ``heads`` (``(seq, head_dim, causal)`` each), run one after the other."""
    return [prefill_record(preset, sim, s, d, bool(c), **kw) for s, d, c in heads]


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("preset")
    ap.add_argument("sim", choices=("verilator", "icarus"))
    ap.add_argument("heads", nargs="+", help="seq:head_dim:causal (0/1)")
    ap.add_argument("--out", type=Path, default=None, help="append records to this JSON list")
    a = ap.parse_args(argv)
    for h in a.heads:
        s, d, c = (int(x) for x in h.split(":"))
        rec = prefill_record(a.preset, a.sim, s, d, bool(c))
        print(json.dumps(rec), flush=True)
        if a.out:
            old = json.loads(a.out.read_text()) if a.out.exists() else []
            a.out.parent.mkdir(parents=True, exist_ok=True)
            a.out.write_text(json.dumps(old + [rec], indent=1))


if __name__ == "__main__":
    main()
