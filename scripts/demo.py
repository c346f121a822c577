"""`make demo`: the main job on a configuration, with a report.

    python scripts/demo.py [--config default] [--m 128 --k 256 --n 128] [--sim verilator]

1. Runs an INT8 GEMM through the simulated systolic array (RTL on Verilator), checks
   every result vector against the golden model and the whole GEMM against exact int64
   arithmetic, and reports cycles, utilization and the ratio to SCALE-Sim's
   weight-stationary cycle count.
2. Runs an attention head (INT8, FlashAttention-style online softmax; FP8 too when the
   preset's array has the FP8 datapath) on the tensor core RTL (array + SRAMs + vector
   unit), checks every word it wrote against the golden model, and reports cycles vs
   the matmul compute bound, array utilization, the vector unit's share and the
   accuracy against float64 softmax attention.
"""
from __future__ import annotations

import argparse
import sys
import time

from models.config import ConfigError, get_preset
from scripts.bench_attention import rtl_records
from scripts.bench_systolic import run_systolic_shapes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="default")
    ap.add_argument("--m", type=int, default=128)
    ap.add_argument("--k", type=int, default=256)
    ap.add_argument("--n", type=int, default=128)
    ap.add_argument("--sim", default="verilator", choices=["verilator", "icarus"])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--attn-seq", type=int, default=128, help="attention sequence length")
    ap.add_argument("--attn-dim", type=int, default=64, help="attention head dimension")
    ap.add_argument("--no-attention", action="store_true")
    args = ap.parse_args(argv)
    try:
        cfg = get_preset(args.config)
    except ConfigError as e:
        print(f"demo: {e}", file=sys.stderr)
        return 2
    if min(args.m, args.k, args.n) < 1:
        print(f"demo: GEMM dimensions must be >= 1, got M={args.m} K={args.k} N={args.n}",
              file=sys.stderr)
        return 2
    a = cfg.systolic
    print(f"jalapeno demo: {cfg.name} preset, {a.rows}x{a.cols} systolic array, "
          f"INT8 GEMM {args.m}x{args.k}x{args.n} on {args.sim} (builds the RTL on first run)",
          flush=True)
    t0 = time.monotonic()
    try:
        (rec,) = run_systolic_shapes(cfg.name, [(args.m, args.k, args.n)], sim=args.sim,
                                     seed=args.seed, tag="demo")
    except RuntimeError as e:
        print(f"demo: FAILED\n{e}", file=sys.stderr)
        return 1
    wall = time.monotonic() - t0
    macs = args.m * args.k * args.n
    print(f"""
  result           bit-exact: every output vector vs the golden model, Y vs exact int64 GEMM
  weight tiles     {rec['folds']} ({a.rows}x{a.cols} each, next tile preloaded while one computes)
  cycles           {rec['cycles']}  (first input accepted .. last result out)
  cycle model      {rec['model_cycles']}  (models.systolic.array_cycles)
  compute bound    {rec['ideal_cycles']}  (M x folds: every PE busy every cycle)
  utilization      {rec['utilization']:.3f}  ({macs} MACs / ({a.rows}x{a.cols} x cycles))
  SCALE-Sim WS     {rec['scalesim_cycles']}  -> measured/SCALE-Sim = {rec['ratio_vs_scalesim']:.3f}
  simulation       {rec['sim_cycles_per_s']} cycles/s on {args.sim}, {wall:.0f} s wall (incl. build)
  seed             {args.seed}
""")
    if args.no_attention:
        return 0
    return _attention(cfg, args)


def _attention(cfg, args) -> int:
    print(f"attention head: seq {args.attn_seq}, head dim {args.attn_dim}, causal, on the "
          f"tensor core ({args.sim}; builds the RTL on first run)", flush=True)
    t0 = time.monotonic()
    try:
        recs = rtl_records(cfg.name, args.sim, seed=args.seed,
                           heads=[(args.attn_seq, args.attn_dim, True)], tag="demo")
    except (RuntimeError, ValueError) as e:
        print(f"demo: attention FAILED\n{e}", file=sys.stderr)
        return 1
    wall = time.monotonic() - t0
    for r in recs:
        print(f"""
  path             {r['path']} ({'E4M3 Q/K/V/P' if r['path'] == 'fp8' else 'INT8 Q/K/V/P, per-tensor scales'})
  result           bit-exact: every accumulator/activation word written vs the golden model
  commands         {r['commands']} (query block {r['query_block']} rows)
  cycles           {r['cycles']}  (first command accepted .. core idle)
  matmul bound     {r['matmul_bound']}  (useful MACs / (R x C)) -> ratio {r['ratio_to_bound']:.2f}
  array util       {r['array_util']:.3f} overall, {r['array_util_in_matmul']:.3f} while matmuls run
  vector unit      {r['vector_share']:.3f} of the cycles (matmuls and vector ops do not overlap)
  accuracy         rms {r['rms_rel']:.5f}, max {r['max_rel']:.5f} of max|V| vs float64 (target 0.01 / 0.04)
  simulation       {r['sim_cycles_per_s']} cycles/s on {args.sim}, {wall:.0f} s wall (incl. build)
""")
    return 0


if __name__ == "__main__":
    sys.exit(main())
