"""`make demo`: the chip end to end on a configuration, with a report.

    python scripts/demo.py [--config default] [--m 256 --k 256 --n 256]
                           [--attn-seq 128 --attn-dim 64 --heads 4] [--sim verilator]

On the chip top (block ``soc``: command processor, compute tiles, HBM channels on the
mesh) the host runtime (``models.runtime``) compiles

1. a GEMM split over every tile, in INT8 and (presets with ``systolic.fp8``) in FP8
   E4M3, and
2. causal attention heads (the streamed schedule: query blocks of every head over all
   tiles, K/V streamed from HBM), on the INT8 path and (with ``systolic.fp8``) on the
   FP8 path,
3. one decode step (``models.runtime_decode``): a batch of sequences of different
   context lengths against a paged INT8 KV cache in HBM (pages in shuffled pool order),
   the new K/V appended by the chip's DMA, flash-decoding over the tiles and a combine,

writes each program's inputs and command ring into HBM, rings the doorbell over
AXI4-Lite, waits for the interrupt and reads the results back (one simulator run for
all of them, ``models.rtl_backend``). Every result is checked bit for bit against the
golden chip model (``models.chip``) and against an independent reference: int64 numpy
(INT8 GEMM), float64 products of the decoded FP8 operands within the binary32
accumulation bound (FP8 GEMM), float64 attention of the dequantized inputs within the
attention paths' error (attention, decode; decode also checks the appended pages against
the host's append and reports the memory-bandwidth utilization). The report (printed, and written to
build/demo/report.md and report.json) gives cycles, utilization of every unit (array
and DMA per tile, HBM, the tiles' NoC ports), the roofline bound and its limiter;
build/demo/timeline.png plots unit activity over time from the perf counters sampled
during the run.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass

import numpy as np

from models import attention as _att
from models.config import ConfigError, get_preset
from models.compiler import FitError
from models.fp8 import E4M3, decode, encode
from models.rtl_backend import run_rtl
from models.chip_perf import stream_roofline
from models import decode as _dec
from models.runtime import prepare_attention, prepare_gemm
from models.runtime_decode import prepare_decode
from scripts.demo_report import plot_timeline, summarize, write_report
from tb.runner import BUILD

OUT = BUILD / "demo"
#: Counter samples per program for the timeline.
SAMPLES = 80


@dataclass
class Program:
    """One program of the demo: its report key and title, the prepared program and the
    inputs its independent check needs."""

    key: str
    title: str
    kind: str               # "gemm", "attention" or "decode"
    prepared: object
    inputs: tuple


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
    ap.add_argument("--decode-batch", type=int, default=8, help="decode: sequences")
    ap.add_argument("--decode-dim", type=int, default=64, help="decode: head dimension")
    ap.add_argument("--decode-context", type=int, default=256,
                    help="decode: longest context (the batch spreads from 1/8 of it)")
    ap.add_argument("--no-fp8", action="store_true",
                    help="INT8 programs only (FP8 runs by default on presets with systolic.fp8)")
    ap.add_argument("--sim", default="verilator", choices=["verilator", "icarus"])
    ap.add_argument("--seed", type=int, default=1)
    return ap.parse_args(argv)


def _programs(args, cfg) -> list[Program]:
    """Every program of the demo, prepared (all fit checks happen here, before the
    simulator is built)."""
    rng = np.random.default_rng(args.seed)
    a = rng.integers(-128, 128, (args.m, args.k), dtype=np.int64)
    b = rng.integers(-128, 128, (args.k, args.n), dtype=np.int64)
    h = args.heads or cfg.soc.tiles
    qkv = [rng.standard_normal((h, args.attn_seq, args.attn_dim)) for _ in range(3)]
    shape = f"{args.m}x{args.k}x{args.n}"
    heads = f"{h} causal heads, seq {args.attn_seq}, d {args.attn_dim}"
    progs = [Program("gemm", f"GEMM {shape} INT8", "gemm", prepare_gemm(a, b, config=cfg),
                     (a, b))]
    fp8 = cfg.systolic.fp8 and not args.no_fp8
    if fp8:                     # E4M3 codes of N(0, 1) values, used as they are
        a8 = encode(rng.standard_normal((args.m, args.k)).astype(np.float32), E4M3)
        b8 = encode(rng.standard_normal((args.k, args.n)).astype(np.float32), E4M3)
        progs.append(Program("gemm_fp8", f"GEMM {shape} FP8 E4M3 -> FP32", "gemm",
                             prepare_gemm(a8, b8, config=cfg, fmt="e4m3"), (a8, b8)))
    progs.append(Program("attention", f"Attention INT8: {heads}", "attention",
                         prepare_attention(*qkv, "causal", config=cfg), ()))
    if fp8:
        progs.append(Program("attention_fp8", f"Attention FP8 E4M3: {heads}", "attention",
                             prepare_attention(*qkv, "causal", config=cfg, path="fp8"), ()))
    progs.append(_decode_program(args, cfg, rng))
    return progs


def _decode_program(args, cfg, rng) -> Program:
    """One INT8 decode step: contexts spread from 1/8 of ``--decode-context`` to it,
    pages of two array widths."""
    b, d, top = args.decode_batch, args.decode_dim, args.decode_context
    ctx = [int(c) for c in np.linspace(max(1, top // 8), top, b)]
    ks = [rng.standard_normal((c, d)) for c in ctx]
    vs = [rng.standard_normal((c, d)) for c in ctx]
    cache = _dec.build_cache(ks, vs, tile=cfg.systolic.rows, page_tokens=2 * cfg.systolic.rows,
                             rng=rng)
    q, kn, vn = (rng.standard_normal((b, d)) for _ in range(3))
    return Program("decode", f"Decode INT8: batch {b}, d {d}, contexts {ctx[0]}..{ctx[-1]}",
                   "decode", prepare_decode(q, kn, vn, cache, config=cfg), (cache, kn, vn))


def main(argv=None) -> int:
    args = _args(argv)
    try:
        cfg = get_preset(args.config).check_chip()
    except ConfigError as e:
        print(f"demo: {e}", file=sys.stderr)
        return 2
    if min(args.m, args.k, args.n, args.attn_seq, args.attn_dim, args.decode_batch,
           args.decode_dim, args.decode_context) < 1 or args.heads < 0:
        print("demo: sizes must be >= 1", file=sys.stderr)
        return 2
    try:
        progs = _programs(args, cfg)
    except (FitError, ValueError) as e:
        print(f"demo: {e}", file=sys.stderr)
        return 2
    sa = cfg.systolic
    print(f"jalapeno demo: {cfg.name} preset, {cfg.soc.tiles} tiles of {sa.rows}x{sa.cols}, "
          f"{cfg.hbm.channels} HBM channels, {cfg.noc.cols}x{cfg.noc.rows} mesh, on {args.sim}")
    for p in progs:
        print(f"  {p.title} ({len(p.prepared.commands)} commands)")
    print("  golden chip model ...", flush=True)
    golden = [p.prepared.run("model") for p in progs]
    print("  RTL (builds the chip on first run: minutes) ...", flush=True)
    t0 = time.monotonic()
    jobs = [p.prepared.rtl_job(sample_every=max(64, int(
        stream_roofline(cfg, p.prepared.commands).bound_cycles // SAMPLES))) for p in progs]
    try:
        rtl_runs = run_rtl(cfg, jobs, sim=args.sim, seed=args.seed)
        runs = [p.prepared.finish(r.result, "rtl", r) for p, r in zip(progs, rtl_runs)]
    except RuntimeError as e:
        print(f"demo: FAILED\n{e}", file=sys.stderr)
        return 1
    wall = time.monotonic() - t0
    checks = [c for p, g, r in zip(progs, golden, runs) for c in _check(p, g, r)]
    report = summarize(cfg, [(p.key, p.title, p.kind, r) for p, r in zip(progs, runs)],
                       checks, wall=wall, sim=args.sim)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "report.json").write_text(json.dumps(report, indent=1))
    text = write_report(report, OUT / "report.md")
    plot_timeline(cfg, [(p.title, r) for p, r in zip(progs, runs)], OUT / "timeline.png")
    print(text)
    print(f"-> {OUT / 'report.md'}, {OUT / 'report.json'}, {OUT / 'timeline.png'}")
    return 0 if all(c["ok"] for c in checks) else 1


def _check(p: Program, golden, run) -> list[dict]:
    """The checks of one program: bit-exact against the golden chip model, then against
    an independent reference."""
    if p.kind == "attention":
        return _check_attention(p, golden, run)
    if p.kind == "decode":
        return _check_decode(p, golden, run)
    exact = {"what": f"{p.title}: C == golden chip model (every word of C)",
             "ok": bool(np.array_equal(run.raw, golden.raw)), "detail": f"{run.raw.size} words"}
    a, b = p.inputs
    if not p.prepared.fp8:
        return [exact, {"what": f"{p.title}: C == int64 numpy (wrapped to int32)",
                        "ok": bool(np.array_equal(run.c, (a @ b).astype(np.int32))),
                        "detail": ""}]
    # binary32 accumulation of exact products: each K tile's partial and each add of
    # the tile partials rounds once (relative 2^-24 of at most sum |a||b|).
    da, db = decode(a, E4M3), decode(b, E4M3)
    ref, mag = da @ db, np.abs(da) @ np.abs(db)
    rounds = -(-a.shape[1] // p.prepared.cfg.systolic.rows) * 2
    err = np.abs(run.c.astype(np.float64) - ref)
    worst = float(np.max(err / np.maximum(mag, np.finfo(np.float64).tiny)))
    return [exact, {"what": f"{p.title}: C vs float64 products of the decoded operands",
                    "ok": bool(np.all(err <= rounds * 2.0 ** -24 * mag)),
                    "detail": f"worst error {worst:.2e} of sum|a||b| (bound "
                              f"{rounds * 2.0 ** -24:.2e})"}]


def _check_attention(p: Program, golden, run) -> list[dict]:
    """Bit-exact O, and O against float64 attention of the dequantized inputs
    (``models.attention.reference``) with the bounds the model tests use (RMS < 1 %,
    max < 5 % of max |V|)."""
    acc = [_att.accuracy(o, _att.reference(h), h) for o, h in zip(run.o.reshape(
        (-1,) + run.o.shape[-2:]), run.heads)]
    rms, mx = max(x["rms_rel"] for x in acc), max(x["max_rel"] for x in acc)
    return [
        {"what": f"{p.title}: O == golden chip model (bit-exact binary32)",
         "ok": bool(np.array_equal(run.o.view(np.uint32), golden.o.view(np.uint32))),
         "detail": f"{run.o.size} values"},
        {"what": f"{p.title}: O vs float64 attention of the dequantized inputs",
         "ok": rms < 0.01 and mx < 0.05 and not any(x["nan"] for x in acc),
         "detail": f"worst head: RMS {rms:.2e}, max {mx:.2e} of max |V|"},
    ]


def _check_decode(p: Program, golden, run) -> list[dict]:
    """Bit-exact O, the chip's append equal to the host's, and O against float64
    attention over the dequantized cache (cosine >= 0.9995, RMS < 1 %, max < 4 % of
    max |V|: the decode model tests' bounds)."""
    cache, kn, vn = p.inputs
    want, _ = _dec.append(cache, kn, vn)
    pre = p.prepared
    qd = np.stack([_dec.dequantize(pre.qc[i], pre.plan.fmt, pre.s_q[i])
                   for i in range(pre.plan.batch)])
    acc = _dec.accuracy(run.o, _dec.reference(want, qd), want)
    return [
        {"what": f"{p.title}: O == golden chip model (bit-exact binary32)",
         "ok": bool(np.array_equal(run.o.view(np.uint32), golden.o.view(np.uint32))),
         "detail": f"{run.o.size} values"},
        {"what": f"{p.title}: K/V pages after the chip's append == the host's append",
         "ok": bool(np.array_equal(run.cache.k_pages, want.k_pages)
                    and np.array_equal(run.cache.v_pages, want.v_pages)),
         "detail": f"{want.num_pages} pages"},
        {"what": f"{p.title}: O vs float64 attention over the dequantized cache",
         "ok": acc["cosine"] >= 0.9995 and acc["rms_rel"] < 0.01 and acc["max_rel"] < 0.04,
         "detail": f"cosine {acc['cosine']:.6f}, RMS {acc['rms_rel']:.2e}, max "
                   f"{acc['max_rel']:.2e} of max |V|"},
    ]


if __name__ == "__main__":
    sys.exit(main())
