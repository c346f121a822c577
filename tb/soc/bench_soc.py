"""cocotb module behind `make bench BENCH=soc`: INT8 GEMMs on the chip top from HBM.

Shapes come from ``JALAPENO_BENCH_SHAPES`` (JSON list of [M, K, N]); one record per shape
is appended to the JSON-lines file ``JALAPENO_BENCH_OUT``. Each GEMM is compiled by
``models.runtime.run_gemm`` (which also runs it on ``models.chip``), its HBM image
(A, B, ring) written by backdoor, the ring started over AXI4-Lite and timed from the
doorbell write to the rising interrupt; C is read back and checked against the model and
int64 numpy, so no number comes from a wrong result.
"""
import json
import os
import time

import cocotb
import numpy as np

from models import compiler as _c
from models.chip import write_ring
from models.runtime import run_gemm
from tb.soc.program import load_image, read_region, run_ring
from tb.soc.tb import SocTB


@cocotb.test()
async def bench_gemm(dut):
    """Doorbell -> IRQ cycles of INT8 GEMMs vs the shape roofline."""
    shapes = json.loads(os.environ.get("JALAPENO_BENCH_SHAPES", "[[16, 16, 16]]"))
    out = os.environ.get("JALAPENO_BENCH_OUT")
    tb = SocTB(dut)
    cfg = tb.config
    sa, tiles = cfg.systolic, cfg.soc.tiles
    rng = np.random.default_rng(tb.seed % 2**32)
    for m, k, n in shapes:
        await tb.reset()
        a = rng.integers(-128, 128, (m, k), dtype=np.int64)
        b = rng.integers(-128, 128, (k, n), dtype=np.int64)
        run = run_gemm(a, b, config=cfg)
        plan, cmds = run.plan, run.commands
        hbm = np.zeros(cfg.hbm.total_bytes, np.uint8)
        hbm[plan.a_addr:plan.a_addr + plan.a_bytes] = _c.pack_a(plan, a.astype(np.int8).view(np.uint8))
        hbm[plan.b_addr:plan.b_addr + plan.b_bytes] = _c.pack_b(plan, b.astype(np.int8).view(np.uint8))
        entries = write_ring(hbm, plan.ring_addr, cmds) + 1
        await load_image(tb, hbm, plan.ring_addr, entries)
        bound = run.roofline.bound_cycles
        t0, c0 = time.monotonic(), tb.now()
        regs = await run_ring(tb, plan.ring_addr, entries,
                              cycles=int(20 * bound + 500 * len(cmds) + 10_000),
                              what=f"the IRQ of the {m}x{k}x{n} GEMM ({len(cmds)} commands)")
        wall = time.monotonic() - t0
        sim_cycles = tb.now() - c0
        assert regs["INTR_STATUS"] == 1 and regs["ERROR_CODE"] == 0, regs
        assert regs["COMPLETIONS"] == len(cmds), regs
        got = await read_region(tb, plan.c_addr, plan.c_bytes)
        hbm[plan.c_addr:plan.c_addr + plan.c_bytes] = got
        c = _c.unpack_c(plan, hbm).view(np.int32)
        assert np.array_equal(c, run.c), f"{m}x{k}x{n}: C differs from models.chip"
        assert np.array_equal(c, (a @ b).astype(np.int32)), f"{m}x{k}x{n}: C differs from numpy"
        cycles = regs["cycles"]
        shape_rl, stream_rl = run.shape_roofline, run.roofline
        rec = {
            "preset": cfg.name, "workload": "gemm", "tiles": tiles, "rows": sa.rows,
            "cols": sa.cols, "M": m, "K": k, "N": n, "commands": len(cmds),
            "cycles": cycles,
            "array_util": round(m * k * n / (tiles * sa.rows * sa.cols * cycles), 4),
            "bound_cycles": shape_rl.bound_cycles, "limiter": shape_rl.limiter,
            "ratio_to_bound": round(shape_rl.bound_cycles / cycles, 4),
            "stream_bound_cycles": stream_rl.bound_cycles,
            "stream_limiter": stream_rl.limiter,
            "hbm_bytes": stream_rl.hbm_bytes,
            "checked": True, "seed": tb.seed, "sim": cocotb.SIM_NAME,
            "sim_cycles_per_s": round(sim_cycles / wall) if wall > 0 else None,
        }
        tb.log.info("bench %s", rec)
        if out:
            with open(out, "a") as f:
                f.write(json.dumps(rec) + "\n")
