"""Indexed (gather / scatter) descriptors of models.dma against an independent byte loop."""
import random
import struct

import numpy as np
import pytest

from models import dma as model
from models.config import get_preset
from models.dma import Descriptor, DmaDir, DmaError
from tb.dma.seq import index_bytes, random_indexed

CFG = get_preset("tiny")
W = CFG.hbm.data_bytes
HBM_N = 32 * 1024


def _brute(d, hbm, sram, win):
    """Reference: idx[z] read with struct, every (z, y, x) byte copied; stop at the first
    plane whose AXI rows leave ``win``. Returns the completion code."""
    load = d.dir == DmaDir.LOAD
    a_base, a_ys, a_zs = (d.src, d.src_ystride, d.src_zstride) if load else \
        (d.dst, d.dst_ystride, d.dst_zstride)
    s_base, s_ys, s_zs = (d.dst, d.dst_ystride, d.dst_zstride) if load else \
        (d.src, d.src_ystride, d.src_zstride)
    for z in range(d.planes):
        (i,) = struct.unpack_from("<I", bytes(hbm), d.index_addr + 4 * z)
        lo, hi = a_base + i * a_zs, a_base + i * a_zs + (d.rows - 1) * a_ys + d.row_bytes
        if lo < win[0] or hi > win[1]:
            return DmaError.WINDOW
        for y in range(d.rows):
            for x in range(d.row_bytes):
                a = a_base + i * a_zs + y * a_ys + x
                s = s_base + z * s_zs + y * s_ys + x
                if load:
                    sram[s] = hbm[a]
                else:
                    hbm[a] = sram[s]
    return DmaError.OK


def _case(seed, **kw):
    rng = random.Random(seed)
    d, idx = random_indexed(rng, W, HBM_N, CFG.dma.sram_bytes, **kw)
    hbm = np.frombuffer(rng.randbytes(HBM_N), np.uint8).copy()
    hbm[d.index_addr:d.index_addr + 4 * d.planes] = np.frombuffer(index_bytes(idx), np.uint8)
    sram = np.frombuffer(rng.randbytes(CFG.dma.sram_bytes), np.uint8).copy()
    return rng, d, idx, hbm, sram


@pytest.mark.parametrize("seed", range(40))
def test_indexed_apply_matches_brute_force(seed):
    """Random gathers (repeats included) and scatters; every 4th case has a plane outside
    the window: the planes before it are copied, the rest not, and the code is WINDOW."""
    bad = random.Random(seed).randrange(4) if seed % 4 == 3 else None
    rng, d, idx, hbm, sram = _case(seed, bad_plane=bad)
    assert model.check_descriptor(CFG.dma, W, d, 0, HBM_N) == DmaError.OK
    assert model.index_list(d, hbm) == idx
    h2, s2 = hbm.copy(), sram.copy()
    code = model.apply(d, hbm, sram)
    want = _brute(d, h2, s2, (0, HBM_N))
    assert code == want
    if bad is not None and bad < d.planes:
        assert code == DmaError.WINDOW
    assert np.array_equal(hbm, h2) and np.array_equal(sram, s2)


@pytest.mark.parametrize("seed", range(20))
def test_indexed_plan(seed):
    """Index reads: each beat of the list read once (one beat, the needed indices'
    bytes strobed), the reads of indices below D + z + 1 before plane z's rows (D =
    index_lookahead); plane z's rows at idx[z] * zstride; after a plane k outside the
    window only the reads of indices below D + k."""
    bad = seed % 3 if seed % 2 else None
    rng, d, idx, hbm, sram = _case(seed, bad_plane=bad)
    plan = model.plan_bursts(CFG.dma, W, d, indices=idx, win=(0, HBM_N))
    D = model.index_lookahead(CFG.dma, W)
    assert D == CFG.dma.max_outstanding // 2 * W // 4
    ok = next((z for z, i in enumerate(idx) if not model.plane_in_window(d, i, 0, HBM_N)),
              d.planes)
    # independent read list: a new read wherever an index starts a new beat
    starts = [z for z in range(d.planes) if z == 0 or (d.index_addr + 4 * z) % W == 0]
    nread = 0
    pos = 0
    ab, ays, azs = d.axi

    def reads_below(lim):
        nonlocal nread, pos
        while nread < len(starts) and starts[nread] < lim:
            z = starts[nread]
            end = starts[nread + 1] if nread + 1 < len(starts) else d.planes
            at = d.index_addr + 4 * z
            b = plan[pos]
            assert (b.index, b.addr, b.beats) == (True, at, 1)
            assert b.strobes == [sum(0xF << (at + 4 * k) % W for k in range(end - z))]
            nread, pos = nread + 1, pos + 1
    reads_below(D)
    for z in range(ok):
        reads_below(D + z + 1)
        covered = []
        while len(covered) < d.rows * d.row_bytes:
            p = plan[pos]
            assert not p.index
            covered += [(p.addr // W + k) * W + j for k, s in enumerate(p.strobes)
                        for j in range(W) if s >> j & 1]
            pos += 1
        assert covered == [ab + idx[z] * azs + y * ays + x for y in range(d.rows)
                           for x in range(d.row_bytes)]
    assert pos == len(plan)
    with pytest.raises(ValueError, match="needs its"):
        model.plan_bursts(CFG.dma, W, d)


def test_indexed_checks():
    """Up-front codes of indexed descriptors, in the documented order."""
    c = CFG.dma
    L, S = DmaDir.LOAD, DmaDir.STORE
    chk = lambda d, wb=0, wl=1 << 16: model.check_descriptor(c, W, d, wb, wl)   # noqa: E731
    ok = dict(index=1, index_addr=0x800)
    base = Descriptor(L, 0, 0, 8, 1, 4, 0, 0, W, W, **ok)
    assert chk(base) == DmaError.OK
    assert chk(Descriptor(L, 0, 0, 0, 1, 4, 0, 0, W, W, index=1, index_addr=2)) == \
        DmaError.BAD_LENGTH                                         # length first
    assert chk(Descriptor(L, 0, 0, 8, 1, 4, 0, 0, W, W, index=1, index_addr=0x802)) == \
        DmaError.MISALIGNED                                         # index_addr % 4
    assert chk(Descriptor(L, 0, 0, 8, 1, 1, 0, 0, W + 4, 0, **ok)) == DmaError.MISALIGNED
    assert chk(Descriptor(S, 0, 0, 8, 1, 1, 0, 0, 0, W + 4, **ok)) == DmaError.MISALIGNED
    assert chk(Descriptor(L, 0, 0, 8, 1, 1, 0, 0, 0, W + 4, **ok)) == DmaError.OK  # SRAM side
    assert chk(Descriptor(L, 0, 0, 8, 1, 4, 0, 0, W, W, index=1, index_addr=0xFFF4),
               wl=0x10000) == DmaError.WINDOW                       # list 0xFFF4 + 16
    assert chk(Descriptor(L, 0, 0, 8, 1, 3, 0, 0, W, W, index=1, index_addr=0xFFF4),
               wl=0x10000) == DmaError.OK
    assert chk(base, wb=0x804) == DmaError.WINDOW                   # list below the window
    assert chk(Descriptor(L, 0, c.sram_bytes - 8, 16, 1, 1, 0, 0, W, W, **ok)) == \
        DmaError.WINDOW                                             # SRAM side as before
    # the AXI rows are not checked up front: base below the window, planes above it
    assert chk(Descriptor(L, 0x100, 0, 8, 1, 1, 0, 0, 0x1000, 0, **ok), wb=0x200) == \
        DmaError.OK
    assert chk(Descriptor(L, 0x100, 0, 8, 1, 1, 0, 0, 0x1000, 0), wb=0x200) == \
        DmaError.WINDOW                                             # index = 0: it is


def test_no_32_bit_wrap():
    """idx * zstride past 2**32 is outside a window that ends at 2**32."""
    d = Descriptor(DmaDir.LOAD, 0x10, 0, 8, 1, 1, 0, 0, 1 << 16, 0, index=1, index_addr=0)
    assert model.plane_in_window(d, (1 << 16) - 1, 0, 1 << 32)
    assert not model.plane_in_window(d, 1 << 16, 0, 1 << 32)
    assert not model.plane_in_window(d, (1 << 32) - 1, 0, 1 << 32)


def test_plane_stop_keeps_earlier_planes():
    """Three planes, the middle one out of the window: plane 0 copied, 1 and 2 not."""
    hbm = np.arange(4096, dtype=np.uint32).astype(np.uint8)
    hbm[0x800:0x80C] = np.frombuffer(index_bytes([2, 500, 1]), np.uint8)
    sram = np.zeros(CFG.dma.sram_bytes, np.uint8)
    d = Descriptor(DmaDir.LOAD, 0, 0, 16, 1, 3, 0, 0, 64, 32, index=1, index_addr=0x800)
    assert model.apply(d, hbm, sram, win_limit=0x1000) == DmaError.WINDOW
    assert list(sram[:16]) == list(hbm[128:144]) and not sram[16:].any()


def test_index_zero_unchanged():
    """index = 0 ignores index_addr (no check, no read) and copies z in place of idx."""
    rng = random.Random(5)
    hbm = np.frombuffer(rng.randbytes(4096), np.uint8).copy()
    sram = np.zeros(CFG.dma.sram_bytes, np.uint8)
    d = Descriptor(DmaDir.LOAD, 8, 8, 8, 1, 3, 0, 0, 40, 16, index_addr=3)
    assert model.check_descriptor(CFG.dma, W, d, 0, 4096) == DmaError.OK
    assert model.apply(d, hbm, sram) == DmaError.OK
    assert [bytes(sram[8 + 16 * z:16 + 16 * z]) for z in range(3)] == \
        [bytes(hbm[8 + 40 * z:16 + 40 * z]) for z in range(3)]


@pytest.mark.parametrize("seed", range(10))
def test_indexed_image_round_trip(seed):
    """index at word 0 bit 16, index_addr the word at 0x24 (independent struct unpack)."""
    rng = random.Random(seed)
    d = Descriptor(**{n: rng.getrandbits(b) for n, b in model.FIELD_BITS.items()})
    img = d.to_bytes()
    w0, ia = struct.unpack_from("<I", img, 0)[0], struct.unpack_from("<I", img, 0x24)[0]
    assert (w0 >> 16 & 1, ia) == (d.index, d.index_addr)
    assert Descriptor.from_bytes(img) == d


def test_tile_model_runs_indexed():
    """TileModel.dma applies a gather and returns the plane-stop code."""
    from models.isa import Sram
    from models.tile import TileModel, tile_descriptor
    hbm = np.frombuffer(random.Random(1).randbytes(4096), np.uint8).copy()
    hbm[0x800:0x808] = np.frombuffer(index_bytes([3, 0]), np.uint8)
    t = TileModel(CFG, hbm)
    d = Descriptor(DmaDir.LOAD, 0, 0, W, 1, 2, 0, 0, 2 * W, W, index=1, index_addr=0x800)
    assert t.dma(tile_descriptor(CFG, Sram.ACT, d)) == DmaError.OK
    act = t.sram(Sram.ACT)
    assert bytes(act[:2 * W]) == bytes(hbm[6 * W:7 * W]) + bytes(hbm[:W])
    hbm[0x800:0x804] = np.frombuffer(index_bytes([4096]), np.uint8)
    assert t.dma(tile_descriptor(CFG, Sram.ACT, d)) == DmaError.WINDOW


def test_chip_model_gathers_and_scatters():
    """ChipModel runs an indexed load (gather) and an indexed store (scatter) through
    models.dma.apply; a plane outside the window is DMA_FAULT with detail WINDOW."""
    from models.chip import ChipModel
    from models.isa import Command, IsaError, Sram
    rng = random.Random(7)
    hbm = np.frombuffer(rng.randbytes(CFG.hbm.total_bytes), np.uint8).copy()
    n, row = 5, 2 * W
    gather, scatter = [4, 1, 4, 0, 7], [9, 2, 11, 5, 3]
    hbm[0x2000:0x2000 + 4 * n] = np.frombuffer(index_bytes(gather), np.uint8)
    hbm[0x2100:0x2100 + 4 * n] = np.frombuffer(index_bytes(scatter), np.uint8)
    ld = Descriptor(DmaDir.LOAD, 0x400, 0, row, 1, n, 0, 0, row, row, index=1,
                    index_addr=0x2000)
    st = Descriptor(DmaDir.STORE, 0, 0x1000, row, 1, n, 0, 0, row, row, index=1,
                    index_addr=0x2100)
    cmds = [Command.load(0, Sram.ACT, ld), Command.fence(),
            Command.store(0, Sram.ACT, st), Command.halt()]
    res = ChipModel(CFG, hbm).run(cmds)
    assert res.ok, res.error
    want = hbm.copy()
    for g, s in zip(gather, scatter):
        want[0x1000 + s * row:0x1000 + (s + 1) * row] = hbm[0x400 + g * row:0x400 + (g + 1) * row]
    assert np.array_equal(res.hbm, want)
    hbm[0x2000 + 8:0x2000 + 12] = np.frombuffer(index_bytes([1 << 20]), np.uint8)
    res = ChipModel(CFG, hbm).run(cmds[:2] + cmds[3:])
    assert (res.error.code, res.error.detail) == (IsaError.DMA_FAULT, DmaError.WINDOW)


def test_isa_check_rtl_matches_model_on_indexed():
    """rtl.soc.cmdproc_check.IsaCheck == models.isa.check on indexed DMA commands (the
    new MISALIGNED / WINDOW rules; AXI rows outside HBM are not rejected up front)."""
    from amaranth.sim import Simulator

    from models.isa import Command, Sram, check
    from rtl.soc.cmdproc_check import IsaCheck
    rng = random.Random(21)
    top = CFG.hbm.total_bytes
    cmds = []
    for k in range(60):
        d = Descriptor(rng.choice([DmaDir.LOAD, DmaDir.STORE]), 0, 0, W, 1,
                       rng.choice([1, 3, 8]), 0, 0, 0, 0, index=1,
                       index_addr=rng.choice([0x100, 0x102, top - 8, top - 4, 0x7FF0]))
        azs = rng.choice([W, 2 * W, W + 4, 1 << 20])
        if d.dir == DmaDir.LOAD:
            d.src, d.src_zstride, d.dst_zstride = rng.choice([0, top - W]), azs, W
        else:
            d.dst, d.dst_zstride, d.src_zstride = rng.choice([0, top - W]), azs, W
        d.index = k % 5 != 0
        cmds.append(Command.load(0, Sram.ACT, d) if d.dir == DmaDir.LOAD
                    else Command.store(0, Sram.ACT, d))
    want = [check(c, CFG) for c in cmds]
    assert {int(f.detail) for f in want} >= {DmaError.OK, DmaError.MISALIGNED,
                                             DmaError.WINDOW}
    dut, got = IsaCheck(CFG), []

    async def bench(ctx):
        for c in cmds:
            ctx.set(dut.i_cmd, int.from_bytes(c.to_bytes(), "little"))
            got.append((ctx.get(dut.o_code), ctx.get(dut.o_detail)))
    sim = Simulator(dut)
    sim.add_testbench(bench)
    sim.run()
    bad = [(c.desc, w, g) for c, w, g in zip(cmds, want, got) if (int(w.code), w.detail) != g]
    assert not bad, bad[:3]
