"""cocotb module behind `make bench BENCH=tensor_core`: GEMM tile sequences, no stalls.

Shapes come from ``JALAPENO_BENCH_SHAPES`` (JSON list of [M, K, N, fp8]); one record per
shape is appended to the JSON-lines file ``JALAPENO_BENCH_OUT``. The GEMM is loaded
through the host port, run as one command per (N tile, K tile), timed from the first
command accepted to ``o_idle``, and its result words are checked against the golden
model (bitwise) and the reference GEMM, so no number comes from a wrong result.
"""
import json
import os
import time

import cocotb
import numpy as np

from models.fp8 import E4M3, gemm_fp8
from models.systolic import gemm_int8, scalesim_cycles
from models.tensor_core import (MEM_ACC, gemm_commands, gemm_images, gemm_layout, gemm_result,
                                matmul_bound_cycles, matmul_cycles)
from tb.tensor.tb import TensorCoreTB


@cocotb.test()
async def bench_gemm_tiles(dut):
    """Cycles of GEMM tile sequences vs the cycle model, the compute bound, SCALE-Sim."""
    shapes = json.loads(os.environ.get("JALAPENO_BENCH_SHAPES", "[[64, 64, 64, 0]]"))
    out = os.environ.get("JALAPENO_BENCH_OUT")
    tb = TensorCoreTB(dut)
    await tb.reset()
    cfg, sa = tb.config, tb.config.systolic
    rng = np.random.default_rng(tb.seed % 2**32)
    for m, k, n, fp8 in shapes:
        lay = gemm_layout(cfg, m, k, n)
        if fp8:
            x = rng.integers(0, 256, (m, k)).astype(np.uint8) & 0xB7   # finite E4M3 codes
            w = rng.integers(0, 256, (k, n)).astype(np.uint8) & 0xB7
        else:
            x = rng.integers(-128, 128, (m, k)).astype(np.int8)
            w = rng.integers(-128, 128, (k, n)).astype(np.int8)
        for mem, addr, rows in gemm_images(cfg, lay, x, w):
            await tb.write_rows(mem, addr, rows)
        cmds = gemm_commands(cfg, lay, fp8=bool(fp8))
        t0, c0, p0, l0 = time.monotonic(), tb.cycle, tb.perf(), tb.loop_cycles
        cycles = await tb.run(cmds, timeout=20 * matmul_cycles(cfg, cmds) + 1000)
        wall = time.monotonic() - t0
        sim_cycles = tb.cycle - c0
        p1 = tb.perf()
        got = await tb.read_rows(MEM_ACC, lay.acc, lay.acc_words)
        assert np.array_equal(got, tb.model.read(MEM_ACC, lay.acc, lay.acc_words)), \
            f"{m}x{k}x{n}: RTL result differs from the golden model"
        y = gemm_result(cfg, lay, got)
        ref = (gemm_fp8(x, E4M3, w, E4M3, tile_k=sa.rows).view(np.uint32) if fp8
               else gemm_int8(x, w).view(np.uint32))
        assert np.array_equal(y, ref), f"{m}x{k}x{n}: result differs from the reference GEMM"
        model = matmul_cycles(cfg, cmds)
        bound = matmul_bound_cycles(cmds)
        scs = scalesim_cycles(sa, m, k, n)
        rec = {
            "preset": cfg.name, "rows": sa.rows, "cols": sa.cols, "M": m, "K": k, "N": n,
            "mode": "fp8" if fp8 else "int8", "cmds": len(cmds), "cycles": cycles,
            "model_cycles": model, "ratio_to_model": round(cycles / model, 4),
            "compute_bound": bound,
            "utilization": round(m * k * n / (sa.peak_macs_per_cycle * cycles), 4),
            "array_busy": round((p1["act"] - p0["act"]) / cycles, 4),
            "scalesim_cycles": scs, "ratio_vs_scalesim": round(cycles / scs, 4),
            "checked": True, "seed": tb.seed, "sim": cocotb.SIM_NAME,
            "sim_cycles_per_s": round(sim_cycles / wall) if wall > 0 else None,
            "tb_loop_cycles": tb.loop_cycles - l0,
        }
        tb.log.info("bench %s", rec)
        if out:
            with open(out, "a") as f:
                f.write(json.dumps(rec) + "\n")
    tb.finish()
