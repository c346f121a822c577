"""cocotb tests of the HBM stub (run by tests/sim/test_hbm_sim.py), AxiMaster-driven.

Every AXI access is bounded in cycles (``HbmTB.read``/``write``/``axi_call``): a stub
that stops answering fails the test naming the access, it never hangs it.
"""
import cocotb
from cocotb.triggers import ClockCycles, FallingEdge

from models.axi import Resp
from models.hbm import ErrKind, burst_verdict
from tb.common.clocked import trials
from tb.common.stream import signal_int
from tb.hbm.tb import HbmTB

OKAY, SLVERR, DECERR = Resp.OKAY, Resp.SLVERR, Resp.DECERR


def _rand_bytes(rng, n):
    return bytes(rng.getrandbits(8) for _ in range(n))


@cocotb.test()
async def test_backdoor_and_axi(dut):
    """Backdoor preload -> AXI read; AXI write -> backdoor readback; on every channel."""
    tb = HbmTB(dut)
    await tb.reset()
    h = tb.hcfg
    span = 4 * h.interleave_bytes
    base = 0
    data = _rand_bytes(tb.rng, span)
    await tb.bd_write(base, data)
    got, resps = await tb.read(base, span)
    assert got == data and set(resps) == {OKAY}, "AXI read of backdoor-preloaded data differs"
    chans = {tb.channel_of(a) for a in range(base, base + span, h.interleave_bytes)}
    assert len(chans) == min(h.channels, 4), f"interleaving touched channels {chans}"
    new = _rand_bytes(tb.rng, span - 3)
    assert set(await tb.write(base + 1, new)) == {OKAY}
    back = await tb.bd_read(base, span)
    exp = bytearray(data)
    exp[1:1 + len(new)] = new
    assert back == bytes(exp), "backdoor readback differs from what AXI wrote"


@cocotb.test()
async def test_random_traffic(dut):
    """Random unaligned/narrow reads and writes, random stalls on every AXI channel."""
    tb = HbmTB(dut)
    await tb.reset()
    h = tb.hcfg
    rng = tb.rng
    region = min(h.total_bytes, 16 * 1024)
    await tb.bd_write(0, _rand_bytes(rng, region))
    for i in range(trials(10)):
        tb.set_stalls(rng.choice([0.0, 0.2, 0.5]), rng.choice([1, 4]))
        n = rng.choice([1, 2, 7, tb.W, 3 * tb.W + 5, rng.randint(1, 600)])
        addr = rng.randrange(0, region - n)
        size = rng.choice([None, None, 0, 1, 2]) if n < 64 else None
        if rng.random() < 0.5:
            data = _rand_bytes(rng, n)
            assert set(await tb.write(addr, data, size=size)) == {OKAY}
            tb.mirror[addr:addr + n] = data
        else:
            got, resps = await tb.read(addr, n, size=size)
            assert set(resps) == {OKAY}
            assert got == bytes(tb.mirror[addr:addr + n]), \
                f"read #{i} at {addr:#x}+{n} (size {size}) differs from the mirror"
    tb.set_stalls(0.0)
    assert await tb.bd_read(0, region) == bytes(tb.mirror[:region]), "memory differs at end"


@cocotb.test()
async def test_concurrent_outstanding(dut):
    """Many reads/writes in flight at once (beyond max_outstanding): no loss, in order."""
    tb = HbmTB(dut)
    await tb.reset()
    h, rng, W = tb.hcfg, tb.rng, tb.W
    n_ops = 3 * h.max_outstanding
    await tb.bd_write(0, _rand_bytes(rng, 8192))
    tb.set_stalls(0.3, 3)
    # n-aligned reads of n bytes never cross an interleave granule (which is DECERR)
    sizes = [rng.choice([W, 4 * W, 8 * W]) for _ in range(n_ops)]
    reads = [(rng.randrange(0, 8192 // n) * n, n) for n in sizes]
    tasks = [cocotb.start_soon(tb.axi.read(a, n, arid=i % (1 << h.id_bits)))
             for i, (a, n) in enumerate(reads)]
    # all in flight at once: each may wait for every burst queued before it
    total = sum(n for _, n in reads)
    for (a, n), t in zip(reads, tasks):
        r = await tb.axi_call(t, nbytes=total, bursts=n_ops,
                              what=f"concurrent AXI read {a:#x}+{n}")
        assert int(r.resp) == OKAY and bytes(r.data) == bytes(tb.mirror[a:a + n]), \
            f"read {a:#x}+{n}: resp {r.resp}"
    assert len(tb.log_hs.ar) >= n_ops
    beats = sum(n // W for _, n in reads)
    assert len(tb.log_hs.r) == beats, f"{len(tb.log_hs.r)} R beats, expected {beats}"
    await ClockCycles(dut.clk, 2)
    assert signal_int(dut.o_perf_rd_bytes) == sum(n for _, n in reads)


@cocotb.test()
async def test_latency_and_rows(dut):
    """First-beat latency = read_latency (+ row miss), 1 beat/cycle after it."""
    tb = HbmTB(dut)
    await tb.reset()
    h, W = tb.hcfg, tb.W
    lens = []
    for addr in (0, 64, 4 * h.row_bytes * h.banks):      # miss, hit, miss (new row)
        tb.log_hs.ar.clear()
        tb.log_hs.r.clear()
        await tb.axi_call(tb.axi.read(addr, 8 * W), nbytes=8 * W,
                          what=f"AXI read {addr:#x}+{8 * W}")
        r0 = tb.log_hs.r[0][0]
        lens.append(r0 - tb.log_hs.ar[0])
        cyc = [c for c, _ in tb.log_hs.r]
        assert cyc == list(range(r0, r0 + 8)), f"beats not back to back: {cyc}"
    tb.log.info("first-beat latencies (miss, hit, miss): %s", lens)
    assert lens[1] == h.read_latency, f"hit latency {lens[1]} != {h.read_latency}"
    assert lens[0] == lens[2] == h.read_latency + h.row_miss_cycles, lens
    await ClockCycles(dut.clk, 2)
    busy0 = signal_int(dut.o_perf_busy)
    assert busy0 >= 24


@cocotb.test()
async def test_errors(dut):
    """DECERR past the end; SLVERR and poison injection; blocked writes change nothing."""
    tb = HbmTB(dut)
    await tb.reset()
    h, W, rng = tb.hcfg, tb.W, tb.rng
    await tb.bd_write(0, _rand_bytes(rng, 4096))
    # past the end of the backed space
    r = await tb.axi_call(tb.axi.read(h.total_bytes, W), nbytes=W,
                          what="DECERR read past the end")
    assert int(r.resp) == DECERR
    w = await tb.axi_call(tb.axi.write(h.total_bytes + 8 * W, bytes(W)), nbytes=W,
                          what="DECERR write past the end")
    assert int(w.resp) == DECERR
    # SLVERR range: reads and writes get SLVERR, writes do not land
    base, limit = 1280, 1280 + 4 * W        # inside one interleave granule
    tb.inject(ErrKind.SLVERR, base, limit)
    got, resps = await tb.read(base - W, 2 * W)
    assert resps == [SLVERR], resps
    size = (W - 1).bit_length()
    assert burst_verdict(h, base - W, 2, size, 1, ErrKind.SLVERR, base, limit) == SLVERR
    assert set(await tb.write(base, bytes([0xA5]) * W)) == {SLVERR}
    got, resps = await tb.read(0, 64)
    assert resps == [OKAY] and got == bytes(tb.mirror[:64]), "a burst outside the range failed"
    # poison: SLVERR with inverted data on read, writes proceed
    tb.inject(ErrKind.POISON, base, limit)
    got, resps = await tb.read(base, W)
    assert resps == [SLVERR]
    assert got == bytes(b ^ 0xFF for b in tb.mirror[base:base + W]), "poisoned data not inverted"
    new = _rand_bytes(rng, W)
    assert set(await tb.write(base, new)) == {OKAY}
    tb.mirror[base:base + W] = new
    tb.inject(0)
    assert await tb.bd_read(0, 4096) == bytes(tb.mirror[:4096]), "memory changed by failed writes"


@cocotb.test()
async def test_reset_mid_traffic(dut):
    """Reset with reads and writes in flight: afterwards the stub works normally."""
    tb = HbmTB(dut)
    await tb.reset()
    W, rng = tb.W, tb.rng
    tasks = [cocotb.start_soon(tb.axi.read(i * 64 * W % 8192, 16 * W)) for i in range(6)]
    await ClockCycles(dut.clk, tb.hcfg.read_latency // 2 + 3)
    for t in tasks:
        t.cancel()
    await FallingEdge(dut.clk)
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    await FallingEdge(dut.clk)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)
    data = _rand_bytes(rng, 8 * W)
    assert set(await tb.write(256, data)) == {OKAY}
    got, resps = await tb.read(256, 8 * W)
    assert got == data and resps == [OKAY]
