"""cocotb tests of the MoE dispatch unit (tests/sim/test_moe_dispatch_sim.py).

Every run is checked against models.moe_dispatch.execute (which calls
models.moe.dispatch): completion code, kept / dropped, and every byte of the memory
(so nothing outside the three tables changes). Seeds come from COCOTB_RANDOM_SEED.
"""
import dataclasses

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles

from models.moe_dispatch import DispatchError, Policy
from tb.common.clocked import trials
from tb.moe_dispatch.seq import put_ranking, random_desc, random_ranking
from tb.moe_dispatch.tb import DispatchTB

STALLS = [(0.0, 1), (0.3, 1), (0.2, 6)]


async def _one(tb, d, hot=None, **kw):
    img = tb.image()
    ranking = random_ranking(np.random.default_rng(tb.rng.getrandbits(32)), d.tokens,
                             d.experts, hot)
    put_ranking(img, d, ranking)
    tb.load(img)
    return await tb.run(d, **kw)


async def _fill(tb):
    tb.load(np.frombuffer(tb.rng.randbytes(tb.size), np.uint8))


@cocotb.test()
async def test_random(dut):
    """Random shapes (T, E, k, capacity 1..T+1), both policies, an overloaded expert half
    of the time, unaligned row starts inside beats, under three stall modes."""
    tb = DispatchTB(dut)
    await tb.reset()
    await _fill(tb)
    for n in range(trials(6)):
        tb.set_stalls(*STALLS[n % len(STALLS)])
        d = random_desc(tb.rng, tb.config)
        hot = tb.rng.randrange(d.experts) if tb.rng.random() < 0.5 else None
        code, cycles = await _one(tb, d, hot)
        assert code == DispatchError.OK
        tb.log.info("T %d E %d k %d cap %d %s: %d cycles", d.tokens, d.experts, d.top_k,
                    d.capacity, Policy(d.policy).name, cycles)
    tb.finish()


@cocotb.test()
async def test_largest_and_capacity_edges(dut):
    """T = dispatch_tokens, E = dispatch_experts, k = min(E, 8), capacity 1 and T, both
    policies (every assignment dropped or rerouted at capacity 1)."""
    tb = DispatchTB(dut, stall=0.2)
    await tb.reset()
    await _fill(tb)
    soc = tb.config.soc
    E = soc.dispatch_experts
    for cap in (1, soc.dispatch_tokens):
        for pol in Policy:
            d = random_desc(tb.rng, tb.config, tokens=soc.dispatch_tokens, experts=E,
                            top_k=min(E, 8), capacity=cap, policy=pol)
            code, cycles = await _one(tb, d, hot=0)
            assert code == DispatchError.OK
            tb.log.info("largest, capacity %d, %s: %d cycles", cap, pol.name, cycles)
    tb.finish()


@cocotb.test()
async def test_shared_and_unaligned_rows(dut):
    """rank_stride 0 (every token reads the same row) and rows starting 4 bytes into a
    beat (a row in two beats), both policies."""
    tb = DispatchTB(dut, stall=0.2)
    await tb.reset()
    await _fill(tb)
    E = tb.config.soc.dispatch_experts
    W = tb.config.hbm.data_bytes
    for pol in Policy:
        d = random_desc(tb.rng, tb.config, tokens=20, experts=E, top_k=min(3, E),
                        capacity=4, policy=pol, rank_stride=0)
        img = tb.image()
        row = np.random.default_rng(tb.rng.getrandbits(32)).permutation(E)
        img[d.rank_addr:d.rank_addr + E] = row
        tb.load(img)
        code, _ = await tb.run(d)
        assert code == DispatchError.OK
        d = random_desc(tb.rng, tb.config, experts=E, rank_addr=W * 8 + 4, policy=pol,
                        rank_stride=4 * (-(-(E + 4) // 4)))
        code, _ = await _one(tb, d, hot=E - 1)
        assert code == DispatchError.OK
    tb.finish()


@cocotb.test()
async def test_errors(dut):
    """Every up-front check and BAD_RANK (a repeated id, an id >= E): the code of the
    model and no byte written."""
    tb = DispatchTB(dut)
    await tb.reset()
    await _fill(tb)
    soc, size = tb.config.soc, tb.size
    ok = random_desc(tb.rng, tb.config, tokens=8, experts=4, top_k=2)
    r = dataclasses.replace
    cases = [r(ok, tokens=0), r(ok, tokens=soc.dispatch_tokens + 1), r(ok, experts=0),
             r(ok, experts=soc.dispatch_experts + 1), r(ok, top_k=0), r(ok, top_k=5),
             r(ok, capacity=0), r(ok, slot_addr=ok.slot_addr + 2), r(ok, rank_stride=6),
             r(ok, counts_addr=size - 4), r(ok, rank_addr=size - 8)]
    for d in cases:
        code, _ = await tb.run(d)
        assert code != DispatchError.OK, d
    for bad in ("dup", "range"):
        img = tb.image()
        ranking = random_ranking(np.random.default_rng(tb.rng.getrandbits(32)), 8, 4)
        if bad == "dup":
            t = tb.rng.randrange(8)
            ranking[t, 3] = ranking[t, 0]
        put_ranking(img, ok, ranking)
        if bad == "range":
            img[ok.rank_addr + 5 * ok.rank_stride + 2] = 4 + tb.rng.randrange(250)
        tb.load(img)
        code, _ = await tb.run(ok)
        assert code == DispatchError.BAD_RANK, bad
    tb.finish()


@cocotb.test()
async def test_axi_errors(dut):
    """SLVERR on a ranking row (AXI, nothing written) and on the counters (AXI, the slot
    table and slot_token list as the model, the counters anything); then exact runs."""
    tb = DispatchTB(dut, stall=0.2)
    await tb.reset()
    await _fill(tb)
    d = random_desc(tb.rng, tb.config, tokens=16, experts=6, top_k=2)
    row = d.rank_addr + tb.rng.randrange(d.tokens) * d.rank_stride
    beat = row - row % (tb.config.hbm.data_bytes)     # AxiRam reads whole beats
    tb.fault(beat, beat + 1)
    code, _ = await _one(tb, d, expect=DispatchError.AXI, exempt=None)
    assert code == DispatchError.AXI
    counts = (d.counts_addr, d.counts_addr + 4 * (2 * d.experts + 3))
    tb.fault(*counts)
    code, _ = await _one(tb, d, expect=DispatchError.AXI, exempt=[counts])
    assert code == DispatchError.AXI
    tb.fault()
    code, _ = await _one(tb, d, hot=0)
    assert code == DispatchError.OK
    tb.finish()


@cocotb.test()
async def test_selfcheck_catches_corruption(dut):
    """The byte comparison works: a corrupted expected image must be reported."""
    tb = DispatchTB(dut)
    await tb.reset()
    await _fill(tb)
    d = random_desc(tb.rng, tb.config, tokens=8, experts=4, top_k=2)
    try:
        await _one(tb, d, corrupt=d.slot_addr + 4 * tb.rng.randrange(16))
    except AssertionError as e:
        tb.log.info("corruption reported as it must be: %s", str(e)[:120])
    else:
        raise AssertionError("the byte comparison missed a corrupted byte")
    tb.finish()


@cocotb.test()
async def test_reset_mid_run(dut):
    """Reset at a random cycle of a run (seeded): no completion comes out of it and the
    next runs are exact."""
    tb = DispatchTB(dut, stall=0.2)
    await tb.reset()
    await _fill(tb)
    for n in range(trials(1) + 1):
        d = random_desc(tb.rng, tb.config, tokens=tb.config.soc.dispatch_tokens)
        img = tb.image()
        put_ranking(img, d, random_ranking(np.random.default_rng(n), d.tokens, d.experts))
        tb.load(img)
        n0, sent0 = len(tb.done), tb.start.sent
        tb.start.send(d.to_payload())
        await tb.wait_until(lambda: tb.start.sent > sent0, timeout=1000, what="acceptance")
        cut = tb.rng.randint(1, 3 * d.tokens)
        await ClockCycles(dut.clk, cut)
        assert len(tb.done) == n0, f"done before the cut at {cut}: choose a longer run"
        tb.log.info("reset %d cycles into %s", cut, d)
        await tb.pulse_reset()
        await ClockCycles(dut.clk, 20)
        assert len(tb.done) == n0, "a completion came out of the aborted run"
        code, _ = await _one(tb, random_desc(tb.rng, tb.config), hot=0)
        assert code == DispatchError.OK
    tb.finish()


@cocotb.test()
async def test_timeout(dut):
    """An AXI port that stops answering: TIMEOUT after soc.watchdog_cycles, not a hang."""
    tb = DispatchTB(dut)
    await tb.reset()
    d = random_desc(tb.rng, tb.config, tokens=4)
    tb.ram.read_if.ar_channel.set_pause_generator(iter(lambda: True, None))
    n0 = len(tb.done)
    tb.start.send(d.to_payload())
    await tb.wait_until(lambda: len(tb.done) > n0,
                        timeout=tb.config.soc.watchdog_cycles + 1000, what="TIMEOUT")
    assert tb.done[n0][0]["err"] == DispatchError.TIMEOUT
    tb.finish()
