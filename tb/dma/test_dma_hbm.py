"""cocotb tests of the DMA engine driving the HBM stub (``dma_hbm``).

Real latency, bandwidth limit and channel interleaving; error responses come from the
stub's error injection, so SLVERR / poison / DECERR reach the engine through real AXI.
"""
import cocotb

from models import dma as model
from models.dma import Descriptor, DmaDir, DmaError
from models.hbm import ErrKind
from tb.common.clocked import trials
from tb.common.stream import signal_int
from tb.dma.seq import random_descriptor
from tb.dma.tb import DmaTB


async def _fill(tb, n=None):
    n = n or tb.hbm_size
    await tb.hbm_write(0, bytes(tb.rng.getrandbits(8) for _ in range(n)))
    tb.sram.mem[:] = bytes(tb.rng.getrandbits(8) for _ in range(len(tb.sram.mem)))


def _inject(tb, kind, base=0, limit=0):
    tb.dut.i_err_kind.value = kind
    tb.dut.i_err_base.value = base
    tb.dut.i_err_limit.value = limit


# Must stay the first test of the module: it is the only one that starts at time 0.
@cocotb.test()
async def test_first_burst_after_power_up(dut):
    """The first AXI bursts after time 0 target channel 0, bank 0, row 0 (local bits 0).

    Regression for an Icarus-only X: the stub's open-row lookup was an ``always @*``
    block whose inputs (bank index, open-row registers) do not change before the first
    burst, so Icarus never evaluated it and the first AW/AR carried an X due time
    (seed 1086681909 of test_round_trips). Verilator evaluates it at time 0 and passed.
    """
    tb = DmaTB(dut)
    await tb.reset()
    await _fill(tb)
    L, S = DmaDir.LOAD, DmaDir.STORE
    for d in (Descriptor(S, 5031, 911, 2, 5, 1, 17, 4065, tag=1),
              Descriptor(L, 0x10, 0x48, 3 * tb.W, tag=2)):
        code, _ = await tb.run(d, timeout=2_000)
        assert code == DmaError.OK, f"{d}: {model.code_name(code)}"
    tb.finish()


@cocotb.test()
async def test_round_trips(dut):
    """Load and store, 1D/2D/3D, across channels, with and without stalls."""
    tb = DmaTB(dut)
    await tb.reset()
    await _fill(tb)
    rng = tb.rng
    for i in range(trials(2)):
        tb.set_stalls(*rng.choice([(0.0, 1), (0.3, 1), (0.2, 6)]))
        d = random_descriptor(rng, tb.W, tb.hbm_size, len(tb.sram.mem), tag=i,
                              max_row=rng.choice([64, 700]))
        code, cycles = await tb.run(d)
        assert code == DmaError.OK, f"#{i} {d}: {model.code_name(code)}"
        tb.log.info("#%d %s: %d cycles", i, d, cycles)
    tb.finish()


@cocotb.test()
async def test_injected_errors(dut):
    """SLVERR (load and store), poison, DECERR: code reported, nothing else written."""
    tb = DmaTB(dut, stall=0.2)
    await tb.reset()
    await _fill(tb)
    W = tb.W
    L, S = DmaDir.LOAD, DmaDir.STORE
    # SLVERR on part of a load's source: error code, SRAM outside the destination intact,
    # and no byte of the failing range lands in SRAM
    _inject(tb, ErrKind.SLVERR, 0x800, 0x840)
    before = bytes(tb.sram.mem)
    code, _ = await tb.run(Descriptor(L, 0x700, 0x100, 0x200, tag=1), expect_err=DmaError.SLVERR)
    assert code == DmaError.SLVERR
    assert tb.sram.mem[0x200:0x240] == before[0x200:0x240], "failing burst's data was written"
    # SLVERR on a store's destination: the range keeps its contents
    hbm = await tb.hbm_read(0x800, 0x40)
    code, _ = await tb.run(Descriptor(S, 0x0, 0x7C0, 0x100, tag=2), expect_err=DmaError.SLVERR)
    assert code == DmaError.SLVERR
    assert await tb.hbm_read(0x800, 0x40) == hbm, "SLVERR range written"
    # poison: uncorrectable read data is reported, never copied
    _inject(tb, ErrKind.POISON, 0x1000, 0x1010)
    before = bytes(tb.sram.mem)
    code, _ = await tb.run(Descriptor(L, 0x1000, 0x300, 4 * W, tag=3), expect_err=DmaError.SLVERR)
    assert code == DmaError.SLVERR and tb.sram.mem[0x300:0x310] == before[0x300:0x310]
    # an error while the descriptor is still generating (more bursts than can be in
    # flight): no new burst is issued after it
    _inject(tb, ErrKind.SLVERR, 0x800, 0x840)
    rd0 = signal_int(dut.o_perf_rd_bytes)
    code, _ = await tb.run(Descriptor(L, 0x780, 0x800, 0x1000, tag=6), expect_err=DmaError.SLVERR)
    read = signal_int(dut.o_perf_rd_bytes) - rd0
    assert code == DmaError.SLVERR and read < 0x1000 - 8 * 16 * W, f"{read} B read after SLVERR"
    _inject(tb, 0)
    # DECERR: window wider than the stub's address space
    tb.set_window(0, tb.hbm_size + 0x1000)
    code, _ = await tb.run(Descriptor(L, tb.hbm_size, 0, 2 * W, tag=4),
                           expect_err=DmaError.DECERR, check_data=False)
    assert code == DmaError.DECERR
    tb.set_window(0, tb.hbm_size)
    code, _ = await tb.run(Descriptor(L, 0x40, 0x40, 8 * W, tag=5))
    assert code == DmaError.OK, "engine unusable after errors"
    tb.finish()


def _batch(tb, n):
    """``n`` random descriptors, both directions, about one in five rejected up front."""
    rng, W = tb.rng, tb.W
    out = []
    for i in range(n):
        d = random_descriptor(rng, W, tb.hbm_size, len(tb.sram.mem), tag=i,
                              max_row=rng.choice([64, 700]))
        r = rng.random()
        if r < 0.1:
            d.row_bytes = 0                                  # BAD_LENGTH
        elif r < 0.2:
            if d.dir == DmaDir.STORE:                          # WINDOW (same byte lane)
                d.dst = tb.hbm_size + d.dst % W
            else:
                d.src = tb.hbm_size + d.src % W
        out.append(d)
    return out


@cocotb.test()
async def test_back_to_back(dut):
    """Queued descriptors overlap: same-direction streams, mixed directions, rejected ones
    and an injected SLVERR in between; codes in order, memories = models applied in order."""
    tb = DmaTB(dut)
    await tb.reset()
    await _fill(tb)
    L, S, W = DmaDir.LOAD, DmaDir.STORE, tb.W
    # a stream of equal loads is faster than the same loads one at a time
    n, size = 4, 64 * W
    stream = [Descriptor(L, i * size, i * size, size, tag=i) for i in range(n)]
    alone = 0
    for d in stream:
        alone += (await tb.run(d))[1]
    codes, cycles = await tb.run_batch(stream)
    assert codes == [DmaError.OK] * n
    tb.log.info("%d x %d B loads: %d cycles back to back, %d one at a time", n, size, cycles,
                alone)
    assert cycles < 0.9 * alone, f"no overlap: {cycles} cycles vs {alone} one at a time"
    # SLVERR in the middle: only that descriptor fails, later ones are unaffected
    _inject(tb, ErrKind.SLVERR, 0x800, 0x840)
    batch = [Descriptor(L, 0x000, 0x000, 0x100, tag=1), Descriptor(L, 0x700, 0x200, 0x200, tag=2),
             Descriptor(L, 0x100, 0x500, 0x100, tag=3), Descriptor(L, tb.hbm_size, 0, W, tag=4),
             Descriptor(S, 0x600, 0x1200, 3 * W + 5, tag=5),
             Descriptor(L, 0x2000, 0x700, 0x80, tag=6),
             Descriptor(L, 0x780, 0x800, 0x1000, tag=7),     # fails while generating
             Descriptor(L, 0x3000, 0x1900, 0x180, tag=8)]
    codes, _ = await tb.run_batch(batch, errors={1: DmaError.SLVERR, 6: DmaError.SLVERR})
    E = DmaError
    assert codes == [E.OK, E.SLVERR, E.OK, E.WINDOW, E.OK, E.OK, E.SLVERR, E.OK], codes
    _inject(tb, 0)
    for rnd in range(trials(1)):
        tb.set_stalls(*tb.rng.choice([(0.0, 1), (0.3, 1), (0.2, 6)]))
        batch = _batch(tb, tb.rng.randint(3, 8))
        codes, cycles = await tb.run_batch(batch)
        tb.log.info("batch %d: %d descriptors, %d cycles, codes %s", rnd, len(batch), cycles,
                    codes)
    tb.finish()
