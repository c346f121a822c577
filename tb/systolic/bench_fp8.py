"""cocotb module behind `make bench` (scripts/bench_fp8.py): FP8 GEMMs on the RTL array.

Cases come from ``JALAPENO_BENCH_FP8`` (JSON list of {"M", "K", "N", "fmt_a", "fmt_b",
"seed"}); operands are random normal values encoded to FP8 (saturating RNE) exactly as
scripts/bench_fp8.py draws them. Each GEMM is checked bit for bit against
``models.fp8.gemm_fp8(..., tile_k=R)`` and one record per case is appended to
``JALAPENO_BENCH_OUT``.
"""
import json
import os

import cocotb
from tb.systolic.fp8_values import normal_fp8
from tb.systolic.tb_fp8 import Job, SystolicModesTB


@cocotb.test()
async def bench_fp8_gemms(dut):
    """Run each case on the array and compare with the golden model."""
    cases = json.loads(os.environ.get("JALAPENO_BENCH_FP8", "[]"))
    out = os.environ.get("JALAPENO_BENCH_OUT")
    tb = SystolicModesTB(dut)
    await tb.reset()
    for c in cases:
        a, w = normal_fp8(c["seed"], c["M"], c["K"], c["N"], c["fmt_a"], c["fmt_b"])
        job = Job(a, w, "fp8", c["fmt_a"], c["fmt_b"], "bench")
        cycles = await tb.run_jobs([job])
        tb.check_job(job)          # raises unless bit-exact
        rec = {**c, "rows": tb.acfg.rows, "cols": tb.acfg.cols, "cycles": cycles,
               "rtl_equals_golden": True, "sim": cocotb.SIM_NAME}
        tb.log.info("bench %s", rec)
        if out:
            with open(out, "a") as f:
                f.write(json.dumps(rec) + "\n")
    tb.finish()
