"""cocotb tests of indexed (gather / scatter) descriptors (tests/sim/test_dma_sim.py).

On ``dma_engine`` (AxiRam, manager-side protocol checker against the burst plan of
:func:`models.dma.plan_bursts`, index reads included) and on ``dma_hbm`` (the HBM
stub: real latency, error injection on the index list). Every copy is checked byte
for byte on both memories against :func:`models.dma.apply` (a plane outside the window
included). Seeds come from COCOTB_RANDOM_SEED (logged by the testbench).
"""
import cocotb

from models import dma as model
from models.dma import Descriptor, DmaDir, DmaError
from models.hbm import ErrKind
from tb.common.clocked import trials
from tb.dma.seq import index_bytes, random_descriptor, random_indexed
from tb.dma.tb import DmaTB

STALLS = [(0.0, 1), (0.2, 1), (0.5, 2), (0.25, 8)]


async def _fill(tb):
    rng = tb.rng
    await tb.hbm_write(0, rng.randbytes(tb.hbm_size))
    tb.sram.mem[:] = rng.randbytes(len(tb.sram.mem))


async def _indexed(tb, **kw):
    """A random indexed descriptor with its index list written to HBM."""
    d, idx = random_indexed(tb.rng, tb.W, tb.hbm_size, len(tb.sram.mem), **kw)
    await _write_list(tb, d.index_addr, idx)
    return d, idx


async def _write_list(tb, addr, idx):
    """Write an index list at ``addr`` (whole beats: the stub's backdoor is word granular;
    the bytes around the list keep the contents last written or read back)."""
    W, raw = tb.W, index_bytes(idx)
    lo, hi = addr // W * W, -(-(addr + len(raw)) // W) * W
    buf = bytearray(tb.shadow[lo:hi])
    buf[addr - lo:addr - lo + len(raw)] = raw
    await tb.hbm_write(lo, bytes(buf))


@cocotb.test()
async def test_indexed_random(dut):
    """Random gathers (repeated indices) and scatters under random stalls; every third
    one has a plane outside the window (WINDOW, earlier planes copied)."""
    tb = DmaTB(dut)
    await tb.reset()
    await _fill(tb)
    rng = tb.rng
    for i in range(trials(6)):
        tb.set_stalls(*rng.choice(STALLS))
        bad = rng.randrange(4) if i % 3 == 2 else None
        d, idx = await _indexed(tb, tag=i & 0xFF, bad_plane=bad)
        want = model.apply(d, bytearray(tb.shadow), bytearray(len(tb.sram.mem)),
                           win_base=tb.win[0], win_limit=tb.win[1])
        code, cycles = await tb.run(d)
        assert code == want, f"indexed #{i} {d} {idx}: {model.code_name(code)}"
        tb.log.info("indexed #%d %s planes %d x %d B, idx %s: %s in %d cycles",
                    i, DmaDir(d.dir).name, d.planes, d.rows * d.row_bytes, idx,
                    model.code_name(code), cycles)
    tb.finish()


@cocotb.test()
async def test_indexed_back_to_back(dut):
    """Plain and indexed descriptors queued back to back (both directions, some planes
    outside the window): codes in order, memories = the models applied in order."""
    tb = DmaTB(dut)
    await tb.reset()
    await _fill(tb)
    rng = tb.rng
    for rnd in range(trials(2)):
        tb.set_stalls(*rng.choice(STALLS))
        dr = rng.choice([DmaDir.LOAD, DmaDir.STORE, None])
        batch = []
        for i in range(rng.randint(3, 6)):
            if rng.random() < 0.6:
                d, _ = await _indexed(tb, dir=dr, tag=i, max_planes=5,
                                      bad_plane=rng.choice([None, None, 0, 2]))
            else:
                d = random_descriptor(rng, tb.W, tb.hbm_size // 2, len(tb.sram.mem), tag=i,
                                      dir=dr)
            batch.append(d)
        # every list is written before the batch runs (a later one may overwrite an
        # earlier one: the models read HBM as it is then); no descriptor writes the
        # upper half of HBM, where the lists are
        codes, cycles = await tb.run_batch(batch)
        tb.log.info("batch %d: %d descriptors, %d cycles, codes %s", rnd, len(batch), cycles,
                    codes)
    tb.finish()


@cocotb.test()
async def test_indexed_bad_input(dut):
    """Misaligned index_addr or AXI zstride, index list outside the window: the code,
    nothing read or written (the checker allows no burst)."""
    tb = DmaTB(dut, stall=0.2)
    await tb.reset()
    await _fill(tb)
    W, L, S = tb.W, DmaDir.LOAD, DmaDir.STORE
    tb.set_window(0x400, 0x2000)
    ix = {"index": 1, "index_addr": 0x1000}
    cases = [
        ("index_addr % 4", Descriptor(L, 0x400, 0, 8, 1, 2, 0, 0, W, W, index=1,
                                      index_addr=0x1002), DmaError.MISALIGNED),
        ("AXI zstride % W (load)", Descriptor(L, 0x400, 0, 8, 1, 1, 0, 0, W + 4, 0, **ix),
         DmaError.MISALIGNED),
        ("AXI zstride % W (store)", Descriptor(S, 0, 0x400, 8, 1, 1, 0, 0, 0, W + 4, **ix),
         DmaError.MISALIGNED),
        ("list below window", Descriptor(L, 0x400, 0, 8, 1, 2, 0, 0, W, W, index=1,
                                         index_addr=0x3FC), DmaError.WINDOW),
        ("list past window", Descriptor(S, 0, 0x400, 8, 1, 3, 0, 0, W, W, index=1,
                                        index_addr=0x1FF8), DmaError.WINDOW),
        ("zero planes", Descriptor(L, 0x400, 0, 8, 1, 0, 0, 0, W, W, **ix),
         DmaError.BAD_LENGTH),
    ]
    for name, d, exp in cases:
        d.tag = exp
        code, _ = await tb.run(d)
        assert code == exp, f"{name}: got {model.code_name(code)}, expected " \
                            f"{model.code_name(exp)}"
        tb.log.info("%-26s -> %s", name, model.code_name(code))
    await _write_list(tb, 0x1000, [3, 0x7FFF_FFFF])     # plane 1 wraps 32 bits
    d = Descriptor(L, 0x400, 0, 8, 1, 2, 0, 0, 0x20, W, tag=9, **ix)
    code, _ = await tb.run(d)
    assert code == DmaError.WINDOW, model.code_name(code)
    code, _ = await tb.run(Descriptor(L, 0x400, 0, 64, tag=77))   # still works
    assert code == DmaError.OK
    tb.finish()


@cocotb.test()
async def test_indexed_reset(dut):
    """Reset while a gather and a scatter are in flight: no completion, engine idle,
    nothing outside the destination changed; the next indexed copies are exact."""
    tb = DmaTB(dut)
    await tb.reset()
    await _fill(tb)
    rng, W = tb.rng, tb.W
    for k in range(trials(1)):
        for dr in (DmaDir.LOAD, DmaDir.STORE):
            tb.set_stalls(rng.choice([0.0, 0.2]), 2)
            n = 24
            idx = [rng.randrange(40) for _ in range(n)]
            await _write_list(tb, 0x3000, idx)
            hbm_at, sram_at = 0x100 + rng.randrange(4) * W, 4 * W * rng.randrange(4)
            src, dst = (hbm_at, sram_at) if dr == DmaDir.LOAD else (sram_at, hbm_at)
            zs = 4 * W
            d = Descriptor(dr, src, dst, 3 * W, 1, n, 0, 0, zs, zs, tag=k,
                           index=1, index_addr=0x3000)
            cut = rng.randint(1, 2 * n)
            tb.log.info("reset #%d: %s cut %d cycles after acceptance", k, d, cut)
            await tb.reset_mid(d, cut, idx=idx)
            tb.set_stalls(0.0)
            nxt, _ = await _indexed(tb, dir=dr, tag=k)
            code, _ = await tb.run(nxt)
            assert code == DmaError.OK, f"indexed copy after reset #{k}: {code}"
    tb.finish()


@cocotb.test()
async def test_indexed_injected_errors(dut):
    """HBM stub: SLVERR / poison on an index read (a gather and a scatter): SLVERR,
    nothing outside the destination changed, the engine then copies exactly."""
    tb = DmaTB(dut, stall=0.2)
    assert tb.system, "error injection needs the HBM stub (dma_hbm)"
    await tb.reset()
    # random SRAM and source rows only (a whole-HBM fill costs more than the test)
    tb.sram.mem[:] = tb.rng.randbytes(len(tb.sram.mem))
    await tb.hbm_write(0x400, tb.rng.randbytes(0x400))
    W = tb.W
    for dr, kind, want in ((DmaDir.LOAD, ErrKind.SLVERR, DmaError.SLVERR),
                           (DmaDir.STORE, ErrKind.POISON, DmaError.SLVERR)):
        idx = [5, 1, 7, 2, 2, 0]
        await _write_list(tb, 0x2000, idx)
        a, s = 0x400, 0x80
        src, dst = (a, s) if dr == DmaDir.LOAD else (s, a)
        d = Descriptor(dr, src, dst, 2 * W, 1, len(idx), 0, 0, 2 * W, 2 * W, tag=int(want),
                       index=1, index_addr=0x2000)
        tb.dut.i_err_kind.value = kind                 # plane 3's index answers an error
        tb.dut.i_err_base.value = 0x200C
        tb.dut.i_err_limit.value = 0x2010
        code, _ = await tb.run(d, expect_err=want)
        assert code == want, f"{DmaDir(dr).name}: {model.code_name(code)}"
        tb.dut.i_err_kind.value = 0
        tb.dut.i_err_limit.value = 0
        nxt, _ = await _indexed(tb, dir=dr, tag=7)
        code, _ = await tb.run(nxt)
        assert code == DmaError.OK, f"indexed copy after the error: {code}"
    tb.finish()


@cocotb.test()
async def test_indexed_plane_cost(dut):
    """Per-plane cost of gathers (64 planes of 16 .. 256 bytes) against the plain 3D
    copy of the same bytes; logged for docs/dma.md, and bounded: a gather may not take
    more than 2 x the plain copy + 8 cycles per plane (the index reads are overlapped)."""
    tb = DmaTB(dut)
    await tb.reset()
    await _fill(tb)
    rng, W, n = tb.rng, tb.W, 64
    for row in (16, 64, 256):
        zs = -(-row // W) * W
        idx = [rng.randrange(tb.hbm_size // 2 // zs - 1) for _ in range(n)]
        await _write_list(tb, 0x4000, idx)
        g = Descriptor(DmaDir.LOAD, 0, 0, row, 1, n, 0, 0, zs, zs, index=1, index_addr=0x4000)
        p = Descriptor(DmaDir.LOAD, 0, 0, row, 1, n, 0, 0, zs, zs)
        code_g, cyc_g = await tb.run(g)
        code_p, cyc_p = await tb.run(p)
        assert code_g == code_p == DmaError.OK
        tb.log.info("PLANE_COST %s: row %d B x %d planes: gather %d cycles (%.1f / plane), "
                    "plain 3D %d cycles (%.1f / plane)", tb.config.name, row, n, cyc_g,
                    cyc_g / n, cyc_p, cyc_p / n)
        assert cyc_g <= 2 * cyc_p + 8 * n, f"gather of {row} B rows: {cyc_g} cycles"
    tb.finish()
