"""FP8 bench: accuracy of the FP8 GEMM (its area and clock: ``make synth``).

Accuracy (build/bench/fp8_accuracy.json): random N(0, 1) operands rounded to FP8, GEMM
of M = N = 64 at K = 128, 1024, 4096 for all four format pairs, with the array's
accumulation (``models.fp8.gemm_fp8``, tile_k = R of the preset: each K tile's products
summed exactly down the array and rounded once to binary32, K-tile partials added in
binary32) against a float64 reference of the
same FP8 inputs, so only accumulation error is measured. Relative error per output
``|y - ref| / |ref|``: max and median (the max is dominated by outputs near zero,
where cancellation makes any rounding large relative to the result), plus two
cancellation-proof figures: max ``|y - ref| / sum_k |a w|`` and
``||y - ref||_F / ||ref||_F``. For comparison the same GEMMs with an emulated
14-bit accumulator (the running sum rounded to 14 significant bits after every add, no
promotion), the precision DeepSeek-V3 reports for H800 FP8 tensor cores (about 2% max
relative error at K = 4096 in their measurement). The K = 128 GEMMs are also run on the
RTL array (``tb.systolic.bench_fp8``), which must give the golden bits, so the fp32 rows
are the RTL's numbers.

Area and clock of the FP8 datapath are measured by ``make synth`` (scripts/synth.py:
ECP5 place-and-route of the INT8-only and INT8+FP8 PE and array; docs/implementation.md),
not here: one synthesis flow.
"""
from __future__ import annotations

import json
import time

import numpy as np

from models.config import get_preset
from models.fp8 import decode, gemm_fp8
from scripts.benchlib import BENCH, print_table, run_records
from tb.systolic.fp8_values import normal_fp8

KS = (128, 1024, 4096)
PAIRS = [("e4m3", "e4m3"), ("e4m3", "e5m2"), ("e5m2", "e4m3"), ("e5m2", "e5m2")]
M = N = 64
SEED = 20260603
EMU_BITS = 14
DEEPSEEK_K4096_MAX_REL = 0.02   # "nearly 2%" (DeepSeek-V3 technical report, sec. 3.3.2)


def _round_sig(x: np.ndarray, p: int) -> np.ndarray:
    """Round float64 values to ``p`` significant bits, ties to even."""
    m, e = np.frexp(x)
    return np.ldexp(np.rint(np.ldexp(m, p)), e - p)


def gemm_emulated(a: np.ndarray, w: np.ndarray, bits: int) -> np.ndarray:
    """Sequential sum over k with the running sum rounded to ``bits`` significant bits."""
    acc = np.zeros((a.shape[0], w.shape[1]))
    for k in range(a.shape[1]):
        acc = _round_sig(acc + a[:, k, None] * w[None, k, :], bits)
    return acc


def _errors(y: np.ndarray, ref: np.ndarray, abs_sum: np.ndarray) -> dict:
    nz = ref != 0
    rel = np.abs(y[nz] - ref[nz]) / np.abs(ref[nz])
    return {"max_rel_err": float(rel.max()), "median_rel_err": float(np.median(rel)),
            "max_err_over_abs_sum": float((np.abs(y - ref) / abs_sum).max()),
            "rel_fro_err": float(np.linalg.norm(y - ref) / np.linalg.norm(ref))}


def accuracy_records(preset: str, rtl_checked: set) -> list[dict]:
    R = get_preset(preset).systolic.rows
    recs = []
    for k in KS:
        for fa, fb in PAIRS:
            a, w = normal_fp8(SEED + k, M, k, N, fa, fb)
            da, dw = decode(a, fa).astype(np.float64), decode(w, fb).astype(np.float64)
            ref = da @ dw
            abs_sum = np.abs(da) @ np.abs(dw)
            y32 = gemm_fp8(a, fa, w, fb, tile_k=R).astype(np.float64)
            base = {"preset": preset, "tile_k": R, "M": M, "K": k, "N": N,
                    "fmt_a": fa, "fmt_b": fb}
            recs.append({**base, "accumulator": "fp32",
                         "rtl_checked": (preset, k, fa, fb) in rtl_checked,
                         **_errors(y32, ref, abs_sum)})
            recs.append({**base, "accumulator": f"{EMU_BITS}-bit (emulated)", "rtl_checked": False,
                         **_errors(gemm_emulated(da, dw, EMU_BITS), ref, abs_sum)})
    return recs


def rtl_check(preset: str, sim: str) -> set:
    """Run the K = 128 bench GEMMs on the RTL; return the (preset, K, fa, fb) checked."""
    k = KS[0]
    cases = [{"M": M, "K": k, "N": N, "fmt_a": fa, "fmt_b": fb, "seed": SEED + k}
             for fa, fb in PAIRS]
    recs = run_records(f"bench-fp8-{preset}-{sim}", "systolic_array", preset, sim,
                       "tb.systolic.bench_fp8", {"JALAPENO_BENCH_FP8": json.dumps(cases)}, seed=1)
    return {(preset, r["K"], r["fmt_a"], r["fmt_b"]) for r in recs if r["rtl_equals_golden"]}


def bench(presets, sim) -> list[dict]:
    t0 = time.monotonic()
    checked = set()
    for preset in presets:
        if not get_preset(preset).systolic.fp8:
            print(f"fp8: {preset} preset has no FP8 datapath (SystolicConfig.fp8 = False): "
                  f"golden model only", flush=True)
            continue
        print(f"fp8: RTL check of the K={KS[0]} GEMMs on {preset}/{sim} ...", flush=True)
        checked |= rtl_check(preset, sim)
    records = []
    for preset in presets:
        records += accuracy_records(preset, checked)
    (BENCH / "fp8_accuracy.json").write_text(json.dumps(records, indent=1))
    shown = [{**r, **{c: f"{r[c]:.2e}" for c in ("max_rel_err", "median_rel_err",
                                                   "max_err_over_abs_sum", "rel_fro_err")}}
             for r in records]
    print_table(shown, ["preset", "tile_k", "K", "fmt_a", "fmt_b", "accumulator",
                        "max_rel_err", "median_rel_err", "max_err_over_abs_sum", "rel_fro_err",
                        "rtl_checked"],
                f"FP8 GEMM accuracy vs float64 (M = N = {M}, N(0,1) data); DeepSeek-V3 reports "
                f"~{DEEPSEEK_K4096_MAX_REL:.0%} max rel. error at K = 4096 on H800")
    print(f"-> {BENCH / 'fp8_accuracy.json'}  ({time.monotonic() - t0:.0f} s)")
    return records
