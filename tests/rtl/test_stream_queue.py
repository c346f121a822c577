"""rtl.lib.stream.Queue: the one-entry queue (a register) behaves cycle for cycle like
the SyncFIFO that the deeper queues use (Amaranth simulator, random valid/ready)."""
import random

import pytest
from amaranth import Module
from amaranth.lib.fifo import SyncFIFO
from amaranth.sim import Simulator

from rtl.lib.stream import Queue


@pytest.mark.parametrize("width", [0, 8])
def test_depth1_queue_matches_syncfifo(width):
    m = Module()
    m.submodules.q = q = Queue(width, 1)
    m.submodules.ref = ref = SyncFIFO(width=max(width, 1), depth=1)
    rng = random.Random(13 + width)
    seen = {"moves": 0}

    async def bench(ctx):
        for _ in range(400):
            v, r, d = rng.random() < 0.6, rng.random() < 0.5, rng.getrandbits(max(width, 1))
            ctx.set(q.i.valid, v)
            ctx.set(q.o.ready, r)
            ctx.set(ref.w_en, v)
            ctx.set(ref.r_en, r)
            ctx.set(ref.w_data, d)
            if width:
                ctx.set(q.i.payload, d)
            got = (ctx.get(q.i.ready), ctx.get(q.o.valid), ctx.get(q.level))
            want = (ctx.get(ref.w_rdy), ctx.get(ref.r_rdy), ctx.get(ref.level))
            assert got == want
            if want[1] and width:
                assert ctx.get(q.o.payload) == ctx.get(ref.r_data)
            seen["moves"] += (v and want[0]) + (r and want[1])
            await ctx.tick()

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(bench)
    sim.run()
    assert seen["moves"] > 100          # entries went in and out
