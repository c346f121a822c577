"""Compute tile tests: DMA <-> SRAM map, GEMMs fed and drained by DMA, DMA during compute.

Every test runs without and with random AXI stalls (AxiRam pauses on all channels) and
compares the AxiRam image with :class:`models.tile.TileModel` byte for byte.
"""
from __future__ import annotations

import cocotb
import numpy as np

from models.dma import Descriptor, DmaDir
from models.isa import Sram
from models.tensor_core import (MEM_ACC, MEM_ACT, MEM_WEIGHT, gemm_commands, gemm_images,
                                gemm_layout, gemm_result, matmul_cycles)
from models.tensor_cmd import TensorCmd
from models.tile import region_bytes, sram_size
from rtl.tensor.core import DMA_WAIT_MAX
from tb.common.clocked import trials
from tb.tile.tb import ComputeTileTB

STALLS = [("no stalls", 0.0), ("AXI stalls", 0.3)]
OUT = 0x8000          # HBM byte address of stored results


def _bytes(rows) -> np.ndarray:
    return np.ascontiguousarray(rows).view(np.uint8).reshape(-1)


async def _modes(dut):
    """The TB, once per stall mode (one TB per test: its agent loop runs to the end)."""
    tb = ComputeTileTB(dut)
    await tb.reset()
    for name, stall in STALLS:
        tb.set_axi_stalls(stall, burst=3)
        yield tb, name


@cocotb.test()
async def dma_sram_map(dut):
    """Random 1D/2D LOADs into each SRAM (and past its end, into unmapped bytes), STOREs
    of random SRAM ranges back to HBM: completions, SRAM rows (host port) and the whole
    HBM image match the golden tile."""
    async for tb, name in _modes(dut):
        rng, W, cfg = tb.rng, tb.W, tb.config
        src = np.frombuffer(rng.randbytes(OUT), np.uint8)
        tb.hbm_write(0, src)
        tag = 0
        for _ in range(trials(6)):
            sram = rng.choice(list(Sram))
            size = sram_size(cfg, sram)
            # mostly inside the SRAM, sometimes running past its end
            for d_dir in (DmaDir.LOAD, DmaDir.STORE):
                rows = rng.choice([1, 1, 3])
                rb = rng.randrange(1, 200)
                ys = rb + rng.randrange(0, 3 * W)
                start = rng.choice([rng.randrange(0, size // 2), size - rng.randrange(1, 300)])
                hb = rng.randrange(0, OUT // 2) if d_dir == DmaDir.LOAD else \
                    OUT + rng.randrange(0, OUT // 2)
                hb += (start - hb) % W                      # same alignment both sides
                ext = start + (rows - 1) * ys + rb
                if ext > region_bytes(cfg) or hb + (rows - 1) * ys + rb > len(tb.hbm):
                    continue
                d = Descriptor(dir=d_dir, src=hb if d_dir == DmaDir.LOAD else start,
                               dst=start if d_dir == DmaDir.LOAD else hb, row_bytes=rb,
                               rows=rows, src_ystride=ys, dst_ystride=ys, tag=tag & 0xFF)
                tag += 1
                tb.dma(sram, d)
                await tb.wait_dma()
        for mem in (MEM_ACT, MEM_WEIGHT, MEM_ACC):
            await tb.check_mem(mem, 0, 64, f"{name}: SRAM rows")
        tb.check_hbm(f"{name}: HBM after LOAD/STORE")
        tb.hbm[OUT] ^= 1                                   # self-check: a wrong byte is seen
        try:
            tb.check_hbm("corrupted expectation")
        except AssertionError:
            pass
        else:
            raise AssertionError("check_hbm missed a corrupted byte")
        tb.hbm[OUT] ^= 1
        tb.finish()
        tb.log.info("%s: %d descriptors, dma perf %s", name, len(tb.expect), tb.dma_perf())


def _gemm_data(tb, m, k, n):
    x = np.array([[tb.rng.randrange(-128, 128) for _ in range(k)] for _ in range(m)], np.int8)
    w = np.array([[tb.rng.randrange(-128, 128) for _ in range(n)] for _ in range(k)], np.int8)
    return x, w


@cocotb.test()
async def gemm_double_buffered(dut):
    """GEMMs whose X and W are DMA-loaded into one SRAM slot while the previous GEMM
    computes out of the other, results DMA-stored while the next GEMM runs; the HBM
    image equals the golden tile and Y equals int64 numpy (wrapped to INT32)."""
    M, K, N, G = 8, 8, 8, 3
    async for tb, name in _modes(dut):
        cfg, R = tb.config, tb.R
        lays = []
        for s in range(2):
            lays.append(gemm_layout(cfg, M, K, N, act=s * 64, wgt=s * 64, acc=s * 64))
        data = [_gemm_data(tb, M, K, N) for _ in range(G)]
        hb = 0
        loads = []
        for g, (x, w) in enumerate(data):       # HBM: X and W images of every GEMM
            lay = lays[g % 2]
            descs = []
            for mem, addr, rows in gemm_images(cfg, lay, x, w):
                img = _bytes(rows)
                tb.hbm_write(hb, img)
                rb = R if mem == MEM_ACT else tb.C
                descs.append((mem, Descriptor(dir=DmaDir.LOAD, src=hb, dst=addr * rb,
                                              row_bytes=len(img), tag=g)))
                hb += -(-len(img) // 64) * 64
            loads.append(descs)
        for mem, d in loads[0]:
            tb.dma(mem, d)
        await tb.wait_dma()
        before = tb.dma_perf()
        for g in range(G):
            lay = lays[g % 2]
            if g + 1 < G:
                for mem, d in loads[g + 1]:
                    tb.dma(mem, d)               # next operands while this GEMM runs
            await tb.send(gemm_commands(cfg, lay))
            await tb.wait_idle()
            await tb.wait_dma()
            acc_b = lay.acc_words * 4 * tb.C
            tb.dma(Sram.ACC, Descriptor(dir=DmaDir.STORE, src=lay.acc * 4 * tb.C,
                                        dst=OUT + g * 1024, row_bytes=acc_b, tag=0x80 + g))
        await tb.wait_dma()
        tb.check_hbm(f"{name}: HBM after {G} GEMMs")
        for g, (x, w) in enumerate(data):
            lay = lays[g % 2]
            raw = bytes(tb.ram.read(OUT + g * 1024, lay.acc_words * 4 * tb.C))
            acc = np.frombuffer(raw, np.uint32).reshape(-1, tb.C)
            y = gemm_result(cfg, lay, acc).view(np.int32)
            ref = (x.astype(np.int64) @ w.astype(np.int64)).astype(np.int32)
            assert np.array_equal(y, ref), f"{name}: GEMM {g} differs from int64 numpy"
        perf = tb.dma_perf()
        tb.log.info("%s: %d GEMMs, DMA SRAM accesses during compute: %d cycles", name, G,
                    perf["overlap"] - before["overlap"])
        assert perf["overlap"] > before["overlap"], "no DMA access overlapped a GEMM"
        tb.finish()


@cocotb.test()
async def dma_during_matmul(dut):
    """A long MATMUL runs while the DMA loads the next X and W and then an accumulator
    range the matmul does not touch: the matmul's cycle count is exactly
    ``matmul_cycles`` (the DMA never delays a running command), its result is
    uncorrupted, the loads land, the overlap is measured in cycles
    (``o_dma_perf.overlap``) and the accumulator write's wait is bounded by the
    matmul's remaining result writes + ``DMA_WAIT_MAX``."""
    async for tb, name in _modes(dut):
        cfg, R, C = tb.config, tb.R, tb.C
        Mr = 256
        await tb.fill_random(MEM_ACT, 0, Mr)
        await tb.fill_random(MEM_WEIGHT, 0, R)
        tb.hbm_write(0, np.frombuffer(tb.rng.randbytes(4096), np.uint8))
        cmds = [TensorCmd.matmul(src=0, w=0, dst=0, m=Mr)]
        p0 = tb.dma_perf()
        await tb.send(cmds)
        start = tb.cycle
        tb.dma(Sram.ACT, Descriptor(dir=DmaDir.LOAD, src=0, dst=512 * R, row_bytes=256, tag=1))
        tb.dma(Sram.WEIGHT, Descriptor(dir=DmaDir.LOAD, src=1024, dst=64 * C, row_bytes=64,
                                       tag=2))
        tb.dma(Sram.ACC, Descriptor(dir=DmaDir.LOAD, src=2048, dst=512 * 4 * C,
                                    row_bytes=1024, tag=3))
        cycles = await tb.wait_idle()
        idle_at = tb.cycle
        await tb.wait_dma()
        p1 = tb.dma_perf()
        want = matmul_cycles(cfg, cmds)
        d = {k: p1[k] - p0[k] for k in p1}
        tb.log.info("%s: matmul %d cycles (model %d); DMA wrote %d SRAM rows, %d of its "
                    "access cycles during the matmul, %d cycles waited for the acc write "
                    "port; completions at +%s cycles, core idle at +%d", name, cycles, want,
                    d["wr"], d["overlap"], d["wait"],
                    [c - start for _, c in tb.done[-3:]], idle_at - start)
        assert cycles == want, f"{name}: matmul took {cycles} cycles, model {want}"
        assert d["overlap"] > 0, f"{name}: no DMA SRAM write during the matmul"
        assert d["wait"] <= Mr + DMA_WAIT_MAX, f"{name}: DMA waited {d['wait']} cycles"
        await tb.check_mem(MEM_ACC, 0, Mr, f"{name}: matmul result")
        await tb.check_mem(MEM_ACT, 512, 64, f"{name}: next X")
        await tb.check_mem(MEM_WEIGHT, 64, 16, f"{name}: next W")
        await tb.check_mem(MEM_ACC, 512, 64, f"{name}: acc load")
        tb.finish()


@cocotb.test()
async def dma_not_starved(dut):
    """Back-to-back MATMULs write the accumulator every cycle; a DMA load into other
    accumulator rows still completes before they end (without AXI stalls: after
    DMA_WAIT_MAX cycles of waiting the dispatcher holds the next command), and every
    result is right."""
    async for tb, name in _modes(dut):
        R, C = tb.R, tb.C
        n, rows = 6, 64
        await tb.fill_random(MEM_ACT, 0, rows)
        await tb.fill_random(MEM_WEIGHT, 0, R)
        tb.hbm_write(0, np.frombuffer(tb.rng.randbytes(256), np.uint8))
        cmds = [TensorCmd.matmul(src=0, w=0, dst=i * rows, m=rows) for i in range(n)]
        await tb.send(cmds, wait=False)
        start = tb.cycle
        tb.dma(Sram.ACC, Descriptor(dir=DmaDir.LOAD, src=0, dst=900 * 4 * C, row_bytes=256,
                                    tag=7))
        cycles = await tb.wait_idle()
        idle_at = tb.cycle
        await tb.wait_dma()
        done_at = tb.done[-1][1]
        want = matmul_cycles(tb.config, cmds)
        tb.log.info("%s: %d matmuls %d cycles (alone %d); acc DMA load done at +%d, core "
                    "idle at +%d, dma perf %s", name, n, cycles, want, done_at - start,
                    idle_at - start, tb.dma_perf())
        if name == "no stalls":     # with AXI stalls the data itself may come late
            assert done_at < idle_at, f"{name}: the DMA load waited until the matmuls ended"
        await tb.check_mem(MEM_ACC, 0, n * rows, f"{name}: matmul results")
        await tb.check_mem(MEM_ACC, 900, 16, f"{name}: acc load")
        tb.finish()
