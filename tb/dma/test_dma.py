"""cocotb tests of the DMA engine against cocotbext-axi's AxiRam (tests/sim/test_dma_sim.py).

Every copy is checked byte for byte on both memories against models.dma (so bytes
outside the destination must be untouched), and every AXI burst/beat by the protocol
checker. Seeds come from COCOTB_RANDOM_SEED (logged).
"""
import cocotb

from models import dma as model
from models.dma import Descriptor, DmaDir, DmaError
from tb.common.clocked import trials
from tb.dma.seq import random_descriptor
from tb.dma.tb import DmaTB

STALL_MODES = [("no stalls", 0.0, 1), ("random stalls", 0.3, 1), ("bursty stalls", 0.2, 6)]


async def _fill(tb):
    rng = tb.rng
    await tb.hbm_write(0, bytes(rng.getrandbits(8) for _ in range(tb.hbm_size)))
    tb.sram.mem[:] = bytes(rng.getrandbits(8) for _ in range(len(tb.sram.mem)))


def _directed(W, hbm, sram):
    L, S = DmaDir.LOAD, DmaDir.STORE
    yield "1D aligned load", Descriptor(L, 0x100, 0x40, 8 * W, tag=1)
    yield "1D unaligned start+end load", Descriptor(L, 0x203, 0x83 % W + 4 * W, 5 * W + 3, tag=2)
    yield "1D single byte store", Descriptor(S, 0x11, 0x101 + (0x11 - 0x101) % W, 1, tag=3)
    yield "1D store crossing 4 KiB", Descriptor(S, 0x20 + (0x1000 - 5) % W, 0x1000 - 5, 9 * W, tag=4)
    yield "1D load crossing 4 KiB", Descriptor(L, 0x2000 - 3 * W - 1, 0x40 + (-1) % W, 7 * W, tag=5)
    yield "2D load, gather 3 rows", Descriptor(L, 0x300, 0x200, 3 * W, 3, 1, 0x100, 3 * W, tag=6)
    yield "2D store, scatter", Descriptor(S, 0x1000 + 5, 0x600 + 5, 2 * W + 1, 4, 1, 2 * W + W,
                                          0x80, tag=7)
    yield "3D load", Descriptor(L, 0x800 + 2, 0x400 + 2, W + 2, 2, 3, 0x40, 2 * W, 0x200,
                                5 * W, tag=8)
    yield "row of max burst + 1 beats", Descriptor(L, 0, 0x40, 17 * W, tag=9)


@cocotb.test()
async def test_directed(dut):
    """1D/2D/3D, unaligned starts and ends, 4 KiB crossings; each under three stall modes."""
    tb = DmaTB(dut)
    await tb.reset()
    await _fill(tb)
    for mode, stall, burst in STALL_MODES:
        tb.set_stalls(stall, burst)
        for name, d in _directed(tb.W, tb.hbm_size, len(tb.sram.mem)):
            code, cycles = await tb.run(d)
            assert code == DmaError.OK, f"{name} [{mode}]: {model.code_name(code)}"
            tb.log.info("%-32s [%s]: %d cycles", name, mode, cycles)
    tb.finish()


@cocotb.test()
async def test_random(dut):
    """Constrained-random descriptors (1D/2D/3D, both directions), random stalls."""
    tb = DmaTB(dut)
    await tb.reset()
    await _fill(tb)
    rng = tb.rng
    for i in range(trials(8)):
        tb.set_stalls(*rng.choice([(0.0, 1), (0.2, 1), (0.5, 2), (0.25, 8)]))
        d = random_descriptor(rng, tb.W, tb.hbm_size, len(tb.sram.mem), tag=i & 0xFF,
                              align=rng.choice([None, None, "4k"]))
        code, cycles = await tb.run(d)
        assert code == DmaError.OK, f"random #{i} {d}: {model.code_name(code)}"
    tb.finish()


@cocotb.test()
async def test_back_to_back(dut):
    """Queued descriptors overlap (both directions, some rejected) under AXI/stream stalls:
    protocol checker on every burst, codes in order, memories = models applied in order."""
    tb = DmaTB(dut)
    await tb.reset()
    await _fill(tb)
    rng = tb.rng
    for rnd in range(trials(2)):
        tb.set_stalls(*rng.choice([(0.0, 1), (0.2, 1), (0.5, 2), (0.25, 8)]))
        batch = []
        for i in range(rng.randint(2, 8)):
            d = random_descriptor(rng, tb.W, tb.hbm_size, len(tb.sram.mem), tag=i,
                                  dir=rng.choice([None, batch[-1].dir if batch else None]),
                                  align=rng.choice([None, "4k"]))
            if rng.random() < 0.15:
                d.rows = 0                                   # BAD_LENGTH
            batch.append(d)
        codes, cycles = await tb.run_batch(batch)
        tb.log.info("batch %d: %d descriptors, %d cycles, codes %s", rnd, len(batch), cycles,
                    codes)
    tb.finish()


@cocotb.test()
async def test_bad_input(dut):
    """Zero length, oversized, misaligned, out of window: documented code, nothing written."""
    tb = DmaTB(dut, stall=0.2)
    await tb.reset()
    await _fill(tb)
    W = tb.W
    L, S = DmaDir.LOAD, DmaDir.STORE
    tb.set_window(0x400, 0x2000)
    cases = [
        ("zero row_bytes", Descriptor(L, 0x400, 0, 0), DmaError.BAD_LENGTH),
        ("zero rows", Descriptor(L, 0x400, 0, 8, rows=0), DmaError.BAD_LENGTH),
        ("zero planes", Descriptor(S, 0, 0x400, 8, planes=0), DmaError.BAD_LENGTH),
        ("oversized", Descriptor(L, 0x400, 0, tb.dcfg.max_bytes + 1), DmaError.BAD_LENGTH),
        ("oversized 3D", Descriptor(L, 0x400, 0, 1 << 12, 1 << 10, 1 << 10, 0, 0),
         DmaError.BAD_LENGTH),
        ("misaligned src/dst", Descriptor(L, 0x401, 0x0, 16), DmaError.MISALIGNED),
        ("misaligned strides", Descriptor(L, 0x400, 0, 8, 2, 1, 0x100, 0x101), DmaError.MISALIGNED),
        ("below window", Descriptor(L, 0x3F0, 0x3F0 % W, 32), DmaError.WINDOW),
        ("above window", Descriptor(S, 0, 0x1FF0, 32), DmaError.WINDOW),
        ("2D last row out of window", Descriptor(L, 0x1000, 0, 16, 3, 1, 0x800, 16),
         DmaError.WINDOW),
        ("SRAM side out of range", Descriptor(L, 0x400, len(tb.sram.mem) - 8, 16), DmaError.WINDOW),
        ("row wraps 32-bit", Descriptor(S, 0, 0xFFFFFFF0, 0x20), DmaError.WINDOW),
    ]
    for name, d, exp in cases:
        d.tag = exp
        code, _ = await tb.run(d)
        assert code == exp, f"{name}: got {model.code_name(code)}, expected " \
                            f"{model.code_name(exp)}"
        tb.log.info("%-28s -> %s", name, model.code_name(code))
    code, _ = await tb.run(Descriptor(L, 0x400, 0, 64, tag=77))   # still works
    assert code == DmaError.OK
    tb.finish()


async def reset_cut_points(tb, n: int, size: int, min_cycles: int):
    """Reset ``n`` times in the middle of a LOAD and of a STORE of ``size`` bytes, at
    random cycles after acceptance below ``min_cycles`` (less than the copy takes): no
    completion, engine idle, every byte outside the destination unchanged; after each,
    a LOAD and a STORE are exact. Shared by the AxiRam and HBM-stub testbenches."""
    rng, W = tb.rng, tb.W
    sram = len(tb.sram.mem)
    for k in range(n):
        for dr in (DmaDir.LOAD, DmaDir.STORE):
            tb.set_stalls(rng.choice([0.0, 0.2]), 2)
            hbm_at = rng.randrange(0, (tb.hbm_size - size) // W) * W
            sram_at = rng.randrange(0, (sram - size) // W) * W
            src, dst = (hbm_at, sram_at) if dr == DmaDir.LOAD else (sram_at, hbm_at)
            d = Descriptor(dr, src, dst, size, tag=k & 0xFF)
            cut = rng.randint(1, min_cycles)
            tb.log.info("reset #%d: %s cut %d cycles after acceptance", k, d, cut)
            await tb.reset_mid(d, cut, margin=None if tb.ram is not None else 256)
            tb.set_stalls(0.0)
            for i, nxt in enumerate([Descriptor(DmaDir.LOAD, 0x100, 0x100, 6 * W + 3, tag=9),
                                     Descriptor(DmaDir.STORE, 0x40, 0x900, 3 * W, tag=10)]):
                if tb.system and nxt.dir == DmaDir.STORE:
                    continue        # a STORE on the stub reads all HBM back twice
                code, _ = await tb.run(nxt)
                assert code == DmaError.OK, f"transfer after reset #{k}: {code}"


@cocotb.test()
async def test_reset_mid_transfer(dut):
    """Reset at random cycles (from the seed) while a LOAD or a STORE is in flight, several
    cut points: nothing outside the destination changes, the next transfers are exact."""
    tb = DmaTB(dut)
    await tb.reset()
    await _fill(tb)
    size = min(len(tb.sram.mem), tb.hbm_size) // 4
    # a copy takes at least one cycle per beat: cut before a quarter of them
    await reset_cut_points(tb, trials(1) + 1, size, size // tb.W // 4)
    tb.finish()


@cocotb.test()
async def test_selfcheck_catches_corruption(dut):
    """The byte comparison works: a corrupted golden memory must be reported."""
    tb = DmaTB(dut)
    await tb.reset()
    await _fill(tb)
    before = await tb.hbm_read(0, tb.hbm_size)
    corrupt = bytearray(before)
    corrupt[0x10] ^= 0x5A                   # outside the copy: the check must notice
    try:
        await tb.run(Descriptor(DmaDir.LOAD, 0x200, 0x200, 64, tag=1), hbm_before=bytes(corrupt))
    except AssertionError as e:
        tb.log.info("corruption reported as it must be: %s", str(e)[:100])
    else:
        raise AssertionError("the byte comparison missed a corrupted byte")
