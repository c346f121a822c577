"""cocotb module behind `make bench BENCH=noc`: latency and accepted throughput vs offered
load on the synthesizable traffic wrapper.

``JALAPENO_BENCH_POINTS``: JSON list of [pattern, offered] (flits/node/cycle);
``JALAPENO_BENCH_WINDOW``: JSON [warmup, measure] cycles. One record per point is
appended to ``JALAPENO_BENCH_OUT``. Every point ends drained and checked (exactly once,
intact), so a figure never comes from a wrong network.
"""
import json
import os
import time

import cocotb

from models.noc import average_zero_load_latency, bound_4_over_k, hotspot_bound, uniform_bound
from tb.noc.trafficlib import TrafficTB

LENGTH = 4          # flits per packet
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
    zero = {}
    for pattern, offered in points:
        t0 = time.monotonic()
        p = await tb.run_point(pattern=pattern, offered=offered, length=LENGTH, hot=hot,
                               hot_frac=HOT_FRAC, vc_mode=2, warmup=warmup, measure=measure,
                               drain_bound=50_000, label=f"{pattern} {offered}")
        wall = time.monotonic() - t0
        zero.setdefault(pattern, p.avg_latency)     # the lowest load comes first
        k = max(cfg.cols, cfg.rows)
        bound = uniform_bound(cfg) if pattern != "hotspot" else hotspot_bound(cfg, HOT_FRAC)
        rec = {
            "preset": tb.config.name, "mesh": f"{cfg.cols}x{cfg.rows}", "traffic": pattern,
            "packet_flits": LENGTH, "offered": round(p.offered, 4),
            "accepted": round(p.accepted, 4), "avg_latency": round(p.avg_latency, 2),
            "max_latency": p.max_latency, "zero_load_latency": round(zero[pattern], 2),
            "zero_load_model": round(average_zero_load_latency(cfg, LENGTH), 2),
            "bound": round(bound, 4), "bound_4_over_k": round(bound_4_over_k(k), 4),
            "accepted_vs_4_over_k": round(p.accepted / bound_4_over_k(k), 4),
            "packets": p.packets, "drain_cycles": p.drain_cycles, "checked": True,
            "seed": tb.seed, "sim": cocotb.SIM_NAME,
            "sim_cycles_per_s": round((warmup + measure + p.drain_cycles) / wall),
        }
        if out:
            with open(out, "a") as f:
                f.write(json.dumps(rec) + "\n")
