"""`make demo`: the chip end to end on a configuration, with a report.

    python scripts/demo.py [--config default] [--m 256 --k 256 --n 256]
                           [--attn-seq 128 --attn-dim 64 --heads 4] [--sim verilator]

On the chip top (block ``soc``: command processor, compute tiles, HBM channels on the
mesh) the host runtime (``models.runtime``) compiles

1. an INT8 GEMM split over every tile, and
2. causal attention heads (INT8 path, one head per tile at a time),

writes each program's inputs and command ring into HBM, rings the doorbell over
AXI4-Lite, waits for the interrupt and reads the results back (one simulator run for
both, ``models.rtl_backend``). Every result is checked bit for bit against the golden
chip model (``models.chip``) and against int64 numpy (GEMM) / float64 attention (within
the INT8 path's error). The report (printed, and written to build/demo/report.md and
report.json) gives cycles, utilization of every unit (array and DMA per tile, HBM, the
tiles' NoC ports), the roofline bound and its limiter; build/demo/timeline.png plots
unit activity over time from the perf counters sampled during the run.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from models import attention as _att
from models.config import ConfigError, get_preset
from models.compiler import FitError
from models.rtl_backend import run_rtl
from models.chip_perf import stream_roofline
from models.runtime import prepare_attention, prepare_gemm
from scripts.demo_report import plot_timeline, summarize, write_report
from tb.runner import BUILD

OUT = BUILD / "demo"
#: Counter samples per program for the timeline.
SAMPLES = 80


def _args(argv):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="default")
    ap.add_argument("--m", type=int, default=256)
    ap.add_argument("--k", type=int, default=256)
    ap.add_argument("--n", type=int, default=256)
    ap.add_argument("--attn-seq", type=int, default=128, help="attention sequence length")
    ap.add_argument("--attn-dim", type=int, default=64, help="attention head dimension")
    ap.add_argument("--heads", type=int, default=0, help="attention heads (default: tiles)")
    ap.add_argument("--sim", default="verilator", choices=["verilator", "icarus"])
    ap.add_argument("--seed", type=int, default=1)
    return ap.parse_args(argv)


def _inputs(args, cfg):
    rng = np.random.default_rng(args.seed)
    a = rng.integers(-128, 128, (args.m, args.k), dtype=np.int64)
    b = rng.integers(-128, 128, (args.k, args.n), dtype=np.int64)
    h = args.heads or cfg.soc.tiles
    qkv = [rng.standard_normal((h, args.attn_seq, args.attn_dim)) for _ in range(3)]
    return a, b, qkv


def main(argv=None) -> int:
    args = _args(argv)
    try:
        cfg = get_preset(args.config).check_chip()
    except ConfigError as e:
        print(f"demo: {e}", file=sys.stderr)
        return 2
    if min(args.m, args.k, args.n, args.attn_seq, args.attn_dim) < 1 or args.heads < 0:
        print("demo: sizes must be >= 1", file=sys.stderr)
        return 2
    a, b, (q, k, v) = _inputs(args, cfg)
    try:                                  # every fit check before the simulator is built
        g = prepare_gemm(a, b, config=cfg)
        at = prepare_attention(q, k, v, "causal", config=cfg)
    except (FitError, ValueError) as e:
        print(f"demo: {e}", file=sys.stderr)
        return 2
    sa = cfg.systolic
    print(f"jalapeno demo: {cfg.name} preset, {cfg.soc.tiles} tiles of {sa.rows}x{sa.cols}, "
          f"{cfg.hbm.channels} HBM channels, {cfg.noc.cols}x{cfg.noc.rows} mesh, on {args.sim}\n"
          f"  GEMM {args.m}x{args.k}x{args.n} INT8 ({len(g.commands)} commands); attention "
          f"{len(at.heads)} causal heads, seq {args.attn_seq}, d {args.attn_dim} "
          f"({len(at.job.commands)} commands)\n  golden chip model ...", flush=True)
    gm, am = g.run("model"), at.run("model")
    print("  RTL (builds the chip on first run: minutes) ...", flush=True)
    t0 = time.monotonic()
    jobs = [p.rtl_job(sample_every=max(64, int(stream_roofline(cfg, p.commands).bound_cycles
                                                  // SAMPLES))) for p in (g, at)]
    try:
        rg, ra = run_rtl(cfg, jobs, sim=args.sim, seed=args.seed)
        gr = g.finish(rg.result, "rtl", rg)
        ar = at.finish(ra.result, "rtl", ra)
    except RuntimeError as e:
        print(f"demo: FAILED\n{e}", file=sys.stderr)
        return 1
    wall = time.monotonic() - t0
    checks = _check(a, b, gm, am, gr, ar)
    report = summarize(cfg, gr, ar, checks, wall=wall, sim=args.sim)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "report.json").write_text(json.dumps(report, indent=1))
    text = write_report(report, OUT / "report.md")
    plot_timeline(cfg, [("GEMM", gr), ("attention", ar)], OUT / "timeline.png")
    print(text)
    print(f"-> {OUT / 'report.md'}, {OUT / 'report.json'}, {OUT / 'timeline.png'}")
    return 0 if all(c["ok"] for c in checks) else 1


def _check(a, b, gm, am, gr, ar) -> list[dict]:
    """Each check: what, ok, detail. Attention accuracy is measured against float64
    attention of the dequantized inputs (``models.attention.reference``), with the bounds
    the model tests use (RMS < 1 %, max < 5 % of max |V|)."""
    acc = [_att.accuracy(o, _att.reference(h), h) for o, h in zip(ar.o.reshape(
        (-1,) + ar.o.shape[-2:]), ar.heads)]
    rms, mx = max(x["rms_rel"] for x in acc), max(x["max_rel"] for x in acc)
    return [
        {"what": "GEMM C == golden chip model (every word of C)",
         "ok": bool(np.array_equal(gr.raw, gm.raw)), "detail": f"{gr.raw.size} words"},
        {"what": "GEMM C == int64 numpy (wrapped to int32)",
         "ok": bool(np.array_equal(gr.c, (a @ b).astype(np.int32))), "detail": ""},
        {"what": "attention O == golden chip model (bit-exact binary32)",
         "ok": bool(np.array_equal(ar.o.view(np.uint32), am.o.view(np.uint32))),
         "detail": f"{ar.o.size} values"},
        {"what": "attention O vs float64 attention of the dequantized inputs",
         "ok": rms < 0.01 and mx < 0.05 and not any(x["nan"] for x in acc),
         "detail": f"worst head: RMS {rms:.2e}, max {mx:.2e} of max |V|"},
    ]


if __name__ == "__main__":
    sys.exit(main())
