"""cocotb module behind `make bench` and `make demo`: GEMMs on the array, no stalls.

Shapes come from ``JALAPENO_BENCH_SHAPES`` (JSON list of [M, K, N]); one record per
shape is appended to the JSON-lines file ``JALAPENO_BENCH_OUT``. Every GEMM is also
checked against the golden model, so a benchmark number is never from a wrong result.
"""
import json
import os
import time

import cocotb
import numpy as np

from models.systolic import array_cycles, ideal_cycles, scalesim_cycles, utilization
from tb.systolic.tb import SystolicTB


@cocotb.test()
async def bench_gemm_shapes(dut):
    """Measure cycles from first input accepted to last result out for each shape."""
    shapes = json.loads(os.environ.get("JALAPENO_BENCH_SHAPES", "[[64, 64, 64]]"))
    out = os.environ.get("JALAPENO_BENCH_OUT")
    tb = SystolicTB(dut)
    await tb.reset()
    a = tb.acfg
    rng = np.random.default_rng(tb.seed)
    for m, k, n in shapes:
        x = rng.integers(-128, 128, (m, k)).astype(np.int8)
        w = rng.integers(-128, 128, (k, n)).astype(np.int8)
        t0 = time.monotonic()
        c0 = tb.cycle
        res = await tb.run_gemm(x, w)
        wall = time.monotonic() - t0
        tb.check_gemm(x, w, res)
        rec = {
            "preset": tb.config.name, "rows": a.rows, "cols": a.cols, "M": m, "K": k, "N": n,
            "cycles": res.cycles, "utilization": round(utilization(a, m, k, n, res.cycles), 4),
            "scalesim_cycles": scalesim_cycles(a, m, k, n),
            "ratio_vs_scalesim": round(res.cycles / scalesim_cycles(a, m, k, n), 4),
            "model_cycles": array_cycles(a, m, k, n),
            "ideal_cycles": ideal_cycles(a, m, k, n),
            "folds": a.folds(k, n), "checked": True, "seed": tb.seed,
            "sim": cocotb.SIM_NAME, "sim_cycles_per_s": round((tb.cycle - c0) / wall),
        }
        tb.log.info("bench %s", rec)
        if out:
            with open(out, "a") as f:
                f.write(json.dumps(rec) + "\n")
    tb.finish()
