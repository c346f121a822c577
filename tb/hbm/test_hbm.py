"""cocotb tests of the HBM stub (run by tests/sim/test_hbm_sim.py), AxiMaster-driven.

Every AXI access is bounded in cycles (``HbmTB.read``/``write``/``axi_call``): a stub
that stops answering fails the test naming the access, it never hangs it.
"""
import cocotb
from cocotb.triggers import ClockCycles, FallingEdge

from models.axi import BOUNDARY_BYTES, Burst, Resp
from models.hbm import ErrKind, burst_verdict
from tb.common.axi_check import AxiSlaveChecker
from tb.common.clocked import tier, trials
from tb.common.stream import signal_int
from tb.hbm.bursts import WRAP_BEATS, Pick, beat_spans, compare, pick_burst
from tb.hbm.coverage import HbmCoverage
from tb.hbm.raw import RawAxi
from tb.hbm.tb import HbmTB

OKAY, SLVERR, DECERR = Resp.OKAY, Resp.SLVERR, Resp.DECERR


def _rand_bytes(rng, n):
    return bytes(rng.getrandbits(8) for _ in range(n))


def _directed_picks(h, W):
    """One burst per error mechanism the RTL must implement (read and write each)."""
    lw, g = (W - 1).bit_length(), h.interleave_bytes
    yield Pick(0x40, 4, lw, Burst.WRAP)                        # WRAP: SLVERR
    yield Pick(0x80, 2, lw, 3)                                 # reserved type: SLVERR
    yield Pick(0x100, 2, lw + 1, Burst.INCR)                   # SIZE > bus: SLVERR
    yield Pick(0x200, 1, 7, Burst.FIXED)                       # SIZE 128 B: SLVERR
    yield Pick(g - W, 2, lw, Burst.INCR)                       # crosses a granule: DECERR
    yield Pick(BOUNDARY_BYTES - 2 * W, 4, lw, Burst.INCR)      # crosses 4 KiB: DECERR
    yield Pick(BOUNDARY_BYTES - 16, 2, 4, Burst.FIXED)         # FIXED inside: by the model
    yield Pick(h.total_bytes - W, 2, lw, Burst.INCR)           # past the end: DECERR


@cocotb.test()
async def test_burst_sweep(dut):
    """Bounded raw AXI driver (tb/hbm/raw.py): WRAP, reserved type, SIZE > bus, granule
    and 4 KiB crossings, past the end, injected SLVERR, and one burst per bin of
    burst type x length class x response x direction (drawn at random and kept when
    models.hbm.burst_verdict gives the bin's response); the covergroup must close.

    First test of the module: the stub's memory is as at power-up (all 0, the mirror's
    initial value), so the whole space is compared at the end without reading it first.
    """
    cov = HbmCoverage("test_burst_sweep")
    tb = HbmTB(dut, master=False, coverage=cov)
    raw = RawAxi(dut, "s_axi", tb.W)
    await tb.reset()
    h, rng = tb.hcfg, tb.rng
    await _preload(tb)
    cycles = tb.axi_cycles(256 * tb.W)
    for p in _directed_picks(h, tb.W):
        await _raw_burst(tb, raw, p, cycles)
    # one round per run; the nightly tier adds rounds with bursts up to 256 beats
    for rnd in range(1 if tier() != "nightly" else trials(1)):
        for burst, lcls, resp, _d in cov.cross_bins():
            if _d == "read":        # each pick is issued as a read and as a write
                p = pick_burst(rng, h, burst=Burst[burst], lcls=lcls, want=Resp[resp],
                               long_max=24 if rnd == 0 else 256)
                await _raw_burst(tb, raw, p, cycles)
    await _check_memory(tb, what="memory after the sweep (rejected writes must not land)")
    cov.export(tb.log)
    cov.assert_closed(tb.seed)
    tb.finish()


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
    tb.finish()


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
    tb.finish()


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
    tb.finish()


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
    tb.finish()


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
    tb.finish()




# --- error paths, coverage, self-check, reset (issue 12) --------------------------------
#: bytes preloaded with random data (the rest of the space stays 0 in stub and mirror)
PRELOAD = 8192


async def _preload(tb, n=PRELOAD, *, sync: bool = False):
    """Random data in ``[0, n)``. The stub keeps its memory from test to test: a test
    must only check bytes it wrote, or ``sync`` the mirror of the whole space first."""
    if sync:
        tb.mirror[:] = await tb.bd_read(0, tb.hcfg.total_bytes)
    await tb.bd_write(0, _rand_bytes(tb.rng, min(n, tb.hcfg.total_bytes)))


async def _check_memory(tb, lo=0, hi=None, skip=None, what="memory"):
    """Backdoor readback of ``[lo, hi)`` (default: the whole space) = the mirror
    (``skip``: bytes exempt)."""
    hi = min(tb.hcfg.total_bytes if hi is None else hi, tb.hcfg.total_bytes)
    lo = max(lo, 0)
    got = await tb.bd_read(lo, hi - lo)
    skip = skip and range(skip.start - lo, skip.stop - lo)
    compare(f"{what} [{lo:#x}, {hi:#x})", got, bytes(tb.mirror[lo:hi]), tb.seed, skip=skip)


def _master_case(rng, h, W, kind):
    """(addr, beats, burst) of one AxiMaster burst of ``kind`` (one burst: inside 4 KiB),
    inside the preloaded region or just past the end of the space."""
    g, T = h.interleave_bytes, min(PRELOAD, h.total_bytes)
    if kind == "wrap":
        beats = rng.choice(WRAP_BEATS)
        return rng.randrange(0, T - beats * W) // W * W, beats, Burst.WRAP
    if kind == "fixed":
        return rng.randrange(0, T // W) * W, rng.randint(1, 16), Burst.FIXED
    beats = rng.randint(2, 16)
    if kind == "granule":   # crosses a granule but no 4 KiB line (AxiMaster splits there)
        edges = [e for e in range(g, T, g) if e % BOUNDARY_BYTES]
        return rng.choice(edges) - rng.randint(1, beats - 1) * W, beats, Burst.INCR
    return h.total_bytes - rng.randint(0, beats - 1) * W, beats, Burst.INCR   # past the end


@cocotb.test()
async def test_error_paths_master(dut):
    """AxiMaster-issued WRAP, FIXED, granule-crossing and past-the-end reads and writes:
    every response = models.hbm.burst_verdict, OKAY data = mirror, rejected writes
    change no byte (the burst's bytes read back after each write)."""
    tb = HbmTB(dut, coverage=HbmCoverage("test_error_paths_master"))
    await tb.reset()
    h, W, rng = tb.hcfg, tb.W, tb.rng
    lw = (W - 1).bit_length()
    await _preload(tb)
    kinds = ["wrap", "fixed", "granule", "end"]
    for i in range(trials(1) * len(kinds)):
        addr, beats, burst = _master_case(rng, h, W, kinds[i % len(kinds)])
        exp = burst_verdict(h, addr, beats, lw, burst)
        what = f"{Burst(burst).name} {addr:#x} x{beats}"
        r = await tb.axi_call(tb.axi.read(addr, beats * W, burst=burst), nbytes=beats * W,
                              what=f"read {what}")
        assert int(r.resp) == exp, f"read {what}: {r.resp!r}, model {exp!r}"
        if exp == OKAY:
            word = bytes(tb.mirror[addr:addr + W])
            want = word * beats if burst == Burst.FIXED else bytes(tb.mirror[addr:addr + beats * W])
            compare(f"read {what}", bytes(r.data), want, tb.seed)
        data = _rand_bytes(rng, beats * W)
        w = await tb.axi_call(tb.axi.write(addr, data, burst=burst), nbytes=beats * W,
                              what=f"write {what}")
        assert int(w.resp) == exp, f"write {what}: {w.resp!r}, model {exp!r}"
        if exp == OKAY and burst == Burst.FIXED:   # every beat rewrites one word: last stays
            tb.mirror[addr:addr + W] = data[-W:]
        elif exp == OKAY:
            tb.mirror[addr:addr + beats * W] = data
        # the burst's own bytes (and a word either side) hold what the model says
        if addr < PRELOAD:
            await _check_memory(tb, addr - W, min(addr + (beats + 1) * W, PRELOAD),
                                what=f"after write {what}")
    tb.coverage.export(tb.log)
    tb.finish()


async def _raw_burst(tb, raw, p, cycles):
    """Issue ``p`` through ``raw`` (read, then write), check against the model and mirror."""
    exp = p.verdict(tb.hcfg)
    tb.inject(*p.inject)
    ids = 1 << tb.hcfg.id_bits
    data, resps = await raw.read(p.addr, p.beats, p.size, p.burst, tb.rng.randrange(ids),
                                 cycles=cycles)
    assert set(resps) == {exp}, f"read {p}: RRESP {resps}, model {exp!r}"
    W = tb.W
    if exp == OKAY:
        for (a, n), word in zip(beat_spans(p, W), data):
            lane = a % W
            got = word.to_bytes(W, "little")[lane:lane + n]
            compare(f"read {p} beat at {a:#x}", got, bytes(tb.mirror[a:a + n]), tb.seed)
    spans = beat_spans(p, W) if p.size <= (W - 1).bit_length() else [(p.addr, W)] * p.beats
    words = [tb.rng.getrandbits(8 * W) for _ in range(p.beats)]
    strb = [((1 << n) - 1) << (a % W) for a, n in spans]
    bresp = await raw.write(p.addr, words, p.size, p.burst, tb.rng.randrange(ids), strb=strb,
                            cycles=cycles)
    assert bresp == exp, f"write {p}: BRESP {bresp}, model {exp!r}"
    if exp == OKAY:
        for (a, n), word in zip(spans, words):
            lane = a % W
            tb.mirror[a:a + n] = word.to_bytes(W, "little")[lane:lane + n]
    tb.inject(0)


@cocotb.test()
async def test_selfcheck_catches_faults(dut):
    """The checks can fail: a corrupted mirror byte is reported by the memory compare, and
    a fault injected through the stub's error hook behind the checker's back (a checker
    whose model does not know of it) is reported as a wrong RRESP/BRESP."""
    tb = HbmTB(dut)
    await tb.reset()
    h, W = tb.hcfg, tb.W
    await _preload(tb, 4096)
    tb.mirror[0x123] ^= 0x5A                        # corrupted expectation
    try:
        compare("selfcheck", await tb.bd_read(0, 4096), bytes(tb.mirror[:4096]), tb.seed)
    except AssertionError as e:
        tb.log.info("corrupted expectation reported as it must be: %s", str(e)[:90])
    else:
        raise AssertionError("the memory compare missed a corrupted byte")
    tb.mirror[0x123] ^= 0x5A
    blind = tb.add(AxiSlaveChecker(dut, "s_axi", rst=dut.rst,
                                   verdict=lambda wr, *a: burst_verdict(h, *a)))
    tb.dut.i_err_kind.value = ErrKind.SLVERR        # the real tb knows (hbm_verdict reads it)
    tb.dut.i_err_base.value, tb.dut.i_err_limit.value = 0x200, 0x240
    await tb.read(0x200, W)
    await tb.write(0x200, bytes(W))
    tb.inject(0)
    tb.agents.remove(blind)
    try:
        blind.finish()
    except AssertionError as e:
        assert "RRESP" in str(e) and "BRESP" in str(e), str(e)
        tb.log.info("injected fault reported as it must be: %s", str(e)[:120])
    else:
        raise AssertionError("the protocol checker missed responses its model contradicts")
    tb.finish()


@cocotb.test()
async def test_reset_mid_traffic(dut):
    """Reset at random cycles (from the seed) with writes and reads in flight: every byte
    outside the aborted writes' destination is unchanged, and the next transfers are
    exact. ``trials(1) + 2`` cut points."""
    tb = HbmTB(dut)
    await tb.reset()
    h, W, rng = tb.hcfg, tb.W, tb.rng
    await _preload(tb)
    n = 16 * W
    region = min(PRELOAD, h.total_bytes)
    cuts = trials(1) + 2
    for k in range(cuts):
        tb.set_stalls(rng.choice([0.0, 0.3]), 2)
        dst = rng.randrange(0, region // (4 * n)) * 4 * n          # 4 writes of n bytes
        src = (dst + region // 2) % region
        tasks = [cocotb.start_soon(tb.axi.write(dst + i * n, _rand_bytes(rng, n)))
                 for i in range(4)]
        tasks += [cocotb.start_soon(tb.axi.read(src + i * n, n)) for i in range(4)]
        cut = rng.randint(1, h.write_latency + 4 * n // W + 20)
        tb.log.info("reset #%d at cycle %d after issue (writes to %#x+%d)", k, cut, dst, 4 * n)
        await ClockCycles(dut.clk, cut)
        for t in tasks:
            t.cancel()
        await FallingEdge(dut.clk)
        dut.rst.value = 1
        await ClockCycles(dut.clk, 3)
        await FallingEdge(dut.clk)
        dut.rst.value = 0
        tb.set_stalls(0.0)
        await ClockCycles(dut.clk, 2)
        # the aborted destination may hold anything; every other byte of the
        # neighbourhood (of the whole preloaded region after the last cut) is unchanged
        lo, hi = (0, region) if k == cuts - 1 else (dst - 1024, min(dst + 4 * n + 1024,
                                                                        region))
        tb.mirror[dst:dst + 4 * n] = await tb.bd_read(dst, 4 * n)
        await _check_memory(tb, lo, hi, skip=range(dst, dst + 4 * n),
                            what=f"memory after reset #{k}")
        a = rng.randrange(0, region // n) * n
        data = _rand_bytes(rng, n)
        assert set(await tb.write(a, data)) == {OKAY}
        tb.mirror[a:a + n] = data
        got, resps = await tb.read(a, n)
        assert resps == [OKAY] and got == data, f"transfer after reset #{k} differs"
    tb.finish()
