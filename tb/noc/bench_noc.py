"""cocotb module behind `make bench BENCH=noc`: latency and accepted throughput vs offered
load on the synthesizable traffic wrapper.

``JALAPENO_BENCH_POINTS``: JSON list of ``[pattern, offered]`` or
``[pattern, offered, options]`` (offered in flits/node/cycle; options: ``length`` flits
per packet, ``queues`` "per_vc" / "one", ``vc_mode`` 0 / 1 (one VC) or 2 (random, the
default), ``tag`` a label copied into the record);
``JALAPENO_BENCH_WINDOW``: JSON [warmup, measure] cycles. One record per point is
appended to ``JALAPENO_BENCH_OUT``. Every point ends drained and checked (exactly once,
intact), so a figure never comes from a wrong network.
"""
import json
import os
import time

import cocotb

from models.noc import average_zero_load_latency, bound_4_over_k, pattern_bound
from tb.noc.trafficlib import TrafficTB

LENGTH = 4          # flits per packet unless a point says otherwise
HOT_FRAC = 0.2


@cocotb.test()
async def bench_load_sweep(dut):
    points = json.loads(os.environ.get("JALAPENO_BENCH_POINTS", '[["uniform", 0.1]]'))
    warmup, measure = json.loads(os.environ.get("JALAPENO_BENCH_WINDOW", "[1000, 4000]"))
    out = os.environ.get("JALAPENO_BENCH_OUT")
    tb = TrafficTB(dut)
    await tb.reset()
    cfg = tb.cfg
    hot = (cfg.cols // 2, cfg.rows // 2)
    k = max(cfg.cols, cfg.rows)
    zero = {}
    for point in points:
        pattern, offered = point[:2]
        opts = point[2] if len(point) > 2 else {}
        length = opts.get("length", LENGTH)
        queues = opts.get("queues", "per_vc")
        vc_mode = opts.get("vc_mode", 2)
        t0 = time.monotonic()
        p = await tb.run_point(pattern=pattern, offered=offered, length=length, hot=hot,
                               hot_frac=HOT_FRAC, vc_mode=vc_mode, queues=queues, warmup=warmup,
                               measure=measure, drain_bound=50_000,
                               label=f"{pattern} {offered} {opts}")
        wall = time.monotonic() - t0
        series = (pattern, length, queues, vc_mode)
        # the lowest load of a series comes first; only a light load measures zero load
        zero.setdefault(series, p.avg_latency if offered <= 0.05 else None)
        bound = pattern_bound(cfg, pattern, HOT_FRAC)
        rec = {
            "preset": tb.config.name, "mesh": f"{cfg.cols}x{cfg.rows}", "traffic": pattern,
            "packet_flits": length, "queues": queues, "vc_mode": vc_mode,
            "buffer_depth": cfg.buffer_depth,
            "data_bits": cfg.data_bits, "tag": opts.get("tag", ""),
            "offered": round(p.offered, 4), "accepted": round(p.accepted, 4),
            "avg_latency": round(p.avg_latency, 2), "max_latency": p.max_latency,
            "zero_load_latency": None if zero[series] is None else round(zero[series], 2),
            "zero_load_model": round(average_zero_load_latency(cfg, length), 2),
            "bound": round(bound, 4), "bound_4_over_k": round(bound_4_over_k(k), 4),
            "accepted_vs_bound": round(p.accepted / bound, 4),
            "accepted_vs_4_over_k": round(p.accepted / bound_4_over_k(k), 4),
            "refused": p.refused, "packets": p.packets, "drain_cycles": p.drain_cycles,
            "checked": True, "seed": int(os.environ.get("COCOTB_RANDOM_SEED", "0")),
            "sim": cocotb.SIM_NAME,
            "sim_cycles_per_s": round((warmup + measure + p.drain_cycles) / wall),
        }
        if out:
            with open(out, "a") as f:
                f.write(json.dumps(rec) + "\n")
