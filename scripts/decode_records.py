"""Decode bench: one decode step of a batch against a paged KV cache on the SoC RTL.

:func:`decode_records` builds a cache (Gaussian K/V, INT8 or FP8, pages in shuffled pool
order), prepares the step (``models.runtime_decode.prepare_decode``), runs it on the RTL
(``models.rtl_backend.run_rtl``, Verilator -Os as the other benches), checks O bit for
bit against the golden chip model and against float64 within the model tests' bounds,
and returns one record per step:

``preset, path, phase="decode", batch, context (list: tokens before the step),
head_dim, page_tokens, kv_bytes`` (K and V bytes the program loads: whole key blocks),
``cycles`` (doorbell -> IRQ), ``mbu = kv_bytes / (cycles x HBM peak bytes/cycle)``,
``matmul_bound`` (busiest tile's MATMUL cycles, ``max(count, R)`` each),
``hbm_bound`` (kv_bytes / peak), ``ratio_to_bound`` (cycles / the larger bound, as the
prefill records: 1.0 is the bound),
``vector_cycles`` (busiest tile's vector commands, ``count + latency`` each),
``commands``, ``ring_bytes``, per-tile ``units`` (busy shares from the perf counters),
``cosine``, ``sim_cycles_per_s``.

``default`` has 2 MiB of HBM; a batch of 8 at contexts up to 4096 and d 128 needs ~6 MiB
(KV pools and the ring): the preset is then widened to the smallest power-of-two
``hbm.channel_bytes`` that fits (``hbm_channel_bytes`` in the record; a separate RTL
build). On ``default`` the run takes ~20 min (11 of them loading the 6 MB image through
the backdoor), so the simulator's wall-clock limit is raised to 3600 s unless
``JALAPENO_WALL_LIMIT`` is set. Run: ``PYTHONPATH=. python scripts/decode_records.py
--preset default`` (``--overlap 0,1`` adds the overlap program, ``--fmts int8,fp8``).
"""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace

import numpy as np

from models import decode as dec
from models.chip_perf import peaks
from models.compiler_decode import kv_bytes
from models.config import get_preset
from models.isa import Opcode
from models.rtl_backend import run_rtl
from models.runtime_decode import prepare_decode
from models.tensor_cmd import Unit
from models.vector import vector_latency
from scripts.benchlib import BENCH, print_table
from scripts.demo_report import matmul_bound

__all__ = ["decode_records", "SHAPES", "make_step"]

#: (batch, contexts, head_dim, page_tokens) per preset.
SHAPES = {
    "tiny": [(4, [7, 16, 30, 45], 8, 8)],
    "default": [(8, [512, 1024, 1536, 2048, 2560, 3072, 3584, 4095], 128, 32)],
}


def make_step(cfg, batch, contexts, d, page_tokens, fmt, rng, read_cache=False,
              overlap=False):
    """A cache of ``contexts`` tokens and one step's inputs, prepared on ``cfg`` (widened
    in HBM if needed); returns (prepared, cfg)."""
    ks = [rng.standard_normal((c, d)) for c in contexts]
    vs = [rng.standard_normal((c, d)) for c in contexts]
    cache = dec.build_cache(ks, vs, tile=cfg.systolic.rows, page_tokens=page_tokens,
                            fmt=fmt, rng=rng)
    q, kn, vn = (rng.standard_normal((batch, d)) for _ in range(3))
    from models.compiler import FitError
    while True:
        try:
            return prepare_decode(q, kn, vn, cache, config=cfg, read_cache=read_cache,
                                  overlap=overlap), cfg
        except FitError as e:
            if "HBM" not in str(e) or cfg.hbm.channel_bytes >= 1 << 26:
                raise
            cfg = replace(cfg, hbm=replace(cfg.hbm, channel_bytes=2 * cfg.hbm.channel_bytes))


def _vector_cycles(cfg, cmds) -> int:
    per = {}
    lat = vector_latency(cfg.systolic.cols)
    for c in cmds:
        if c.opcode == Opcode.TENSOR and c.tensor.unit == Unit.VECTOR:
            per[c.tile] = per.get(c.tile, 0) + c.tensor.count + lat
    return max(per.values(), default=0)


def _record(cfg, preset, prep, r, contexts) -> dict:
    run = prep.finish(r.result, "rtl", r)
    ref = prep.run("model")
    assert np.array_equal(run.o.view(np.uint32), ref.o.view(np.uint32)), \
        "decode O differs from models.chip"
    plan = prep.plan
    qd = np.stack([dec.dequantize(prep.qc[i], plan.fmt, prep.s_q[i])
                   for i in range(plan.batch)])
    acc = dec.accuracy(run.o, dec.reference(prep.expected, qd), prep.expected)
    cmds, cyc, pk = plan.commands, run.cycles, peaks(cfg).hbm_bytes_per_cycle
    kvb, mb = kv_bytes(plan), matmul_bound(cfg, cmds)
    cnt = r.counters
    units = [{"tile": t, "array_busy": round(cnt[f"TILE[{t}].COMPUTE_BUSY"] / cyc, 3),
              "dma_load_busy": round(cnt[f"TILE[{t}].LOAD_BUSY"] / cyc, 3),
              "tokens_waited": cnt[f"TILE[{t}].TOKENS_WAITED"]}
             for t in range(cfg.soc.tiles)]
    return {"preset": preset, "path": plan.fmt, "phase": "decode", "batch": plan.batch,
            "context": list(contexts), "head_dim": plan.d, "page_tokens": plan.page_tokens,
            "hbm_channel_bytes": cfg.hbm.channel_bytes, "splits": len(plan.splits),
            "overlap": plan.overlap,
            "kv_bytes": kvb, "cycles": cyc, "mbu": round(kvb / (cyc * pk), 4),
            "matmul_bound": mb, "hbm_bound": round(kvb / pk),
            "ratio_to_bound": round(cyc / max(mb, kvb / pk), 4),
            "vector_cycles": _vector_cycles(cfg, cmds), "commands": len(cmds),
            "ring_bytes": 64 * len(cmds), "hbm_bytes_moved": cnt["BYTES_READ"] +
            cnt["BYTES_WRITTEN"], "units": units, "cosine": round(acc["cosine"], 6),
            "rms_rel": acc["rms_rel"], "max_rel": acc["max_rel"], "checked": True,
            "sim": r.sim_run.sim, "sim_cycles_per_s": r.sim_cycles_per_s}


def decode_records(preset: str, sim: str = "verilator", *, fmts=("int8",), shapes=None,
                   seed: int = 1, overlaps=(False,)) -> list[dict]:
    """Run the decode steps of ``preset`` (``SHAPES`` or ``shapes``) on the RTL and return
    their records (module docstring); all steps of one config run in one simulator
    process."""
    base = get_preset(preset)
    steps = []
    for batch, contexts, d, pt in shapes or SHAPES[preset]:
        for fmt in fmts:
            for ov in overlaps:
                prep, cfg = make_step(base, batch, contexts, d, pt, fmt,
                                      np.random.default_rng(seed), overlap=ov)
                steps.append((prep, cfg, contexts))
    if preset != "tiny":            # the default step loads ~6 MB through the backdoor
        os.environ.setdefault("JALAPENO_WALL_LIMIT", "3600")
    out = []
    for cfg in {c.to_json(): c for _, c, _ in steps}.values():
        mine = [s for s in steps if s[1] == cfg]
        runs = run_rtl(cfg, [p.rtl_job() for p, _, _ in mine], sim=sim, seed=seed)
        out += [_record(cfg, preset, p, r, ctx) for (p, _, ctx), r in zip(mine, runs)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--sim", default="verilator")
    ap.add_argument("--fmts", default="int8")
    ap.add_argument("--overlap", default="0", help="0, 1 or 0,1 (both programs)")
    args = ap.parse_args()
    t0 = time.monotonic()
    recs = decode_records(args.preset, args.sim, fmts=tuple(args.fmts.split(",")),
                          overlaps=tuple(bool(int(x)) for x in args.overlap.split(",")))
    BENCH.mkdir(parents=True, exist_ok=True)
    (BENCH / f"decode_{args.preset}.json").write_text(json.dumps(recs, indent=1))
    print_table(recs, ["preset", "path", "overlap", "batch", "head_dim", "kv_bytes", "cycles", "mbu",
                       "matmul_bound", "hbm_bound", "vector_cycles", "ratio_to_bound",
                       "cosine", "sim_cycles_per_s"], "decode step on the SoC RTL")
    print(f"-> {BENCH / f'decode_{args.preset}.json'} ({time.monotonic() - t0:.0f} s)")


if __name__ == "__main__":
    main()
