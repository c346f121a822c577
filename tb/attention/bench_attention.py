"""cocotb module behind `make bench` (attention) and `make demo`: heads on the tensor core.

Heads come from ``JALAPENO_BENCH_HEADS`` (JSON list of [seq, head_dim, causal]); the
path is INT8, plus FP8 when the array has the FP8 datapath. One record per head is
appended to the JSON-lines file ``JALAPENO_BENCH_OUT``. Every head is checked bitwise
against the golden model first (tb.attention.head.run_head), so no figure comes from a
wrong result.
"""
import json
import os
import time

import cocotb
import numpy as np

from models import attention as att
from tb.attention.head import run_head
from tb.tensor.tb import TensorCoreTB


@cocotb.test()
async def bench_attention_heads(dut):
    """Cycles of each head from the first command accepted to idle, with perf counters."""
    heads = json.loads(os.environ.get("JALAPENO_BENCH_HEADS", "[[16, 32, false]]"))
    out = os.environ.get("JALAPENO_BENCH_OUT")
    tb = TensorCoreTB(dut)
    await tb.reset()
    cfg = tb.config
    rc = cfg.systolic.rows * cfg.systolic.cols
    paths = att.PATHS if cfg.systolic.fp8 else ("int8",)
    for n, (seq, d, causal) in enumerate(heads):
        for path in paths:
            p = att.AttentionProblem(seq, seq, d, path=path, causal=bool(causal))
            head = att.random_head(p, np.random.default_rng(tb.seed + n))
            c0, t0 = tb.cycle, time.monotonic()
            run = await run_head(tb, head)
            wall = time.monotonic() - t0
            macs = att.macs(run.plan, run.cmds)
            bound = macs // rc
            matmul_cycles = max(1, run.perf["busy"] - run.perf["vector"])
            rec = {
                "preset": cfg.name, "rows": cfg.systolic.rows, "cols": cfg.systolic.cols,
                "path": path, "seq": seq, "head_dim": d, "causal": bool(causal),
                "query_block": run.plan.mq, "commands": len(run.cmds), "cycles": run.cycles,
                "matmul_bound": bound, "ratio_to_bound": round(run.cycles / bound, 3),
                "array_util": round(macs / (rc * run.cycles), 4),
                "array_util_in_matmul": round(run.perf["act"] / matmul_cycles, 4),
                "vector_cycles": run.perf["vector"],
                "vector_share": round(run.perf["vector"] / run.cycles, 4),
                "rms_rel": run.accuracy["rms_rel"], "max_rel": run.accuracy["max_rel"],
                "checked": True, "seed": tb.seed, "sim": cocotb.SIM_NAME,
                "sim_cycles_per_s": round((tb.cycle - c0) / wall),
            }
            tb.log.info("bench %s", rec)
            if out:
                with open(out, "a") as f:
                    f.write(json.dumps(rec) + "\n")
    tb.finish()
