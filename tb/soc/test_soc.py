"""cocotb tests of the chip top (``soc``): INT8 GEMMs compiled by models.compiler, run from
HBM through the host registers, checked against models.chip (whole HBM image) and int64
numpy (C). While the chip runs, the test only waits for the interrupt."""
from __future__ import annotations

import cocotb
import numpy as np

from models import compiler as _c
from models.chip import ChipModel, write_ring
from models.isa import CMD_BYTES, Opcode
from models.runtime import run_gemm
from tb.soc.program import run_ring
from tb.soc.tb import SocTB

INTR_DONE = 1
#: Cycle bound of one GEMM program on tiny (the 8x8x8 one takes well under 2000).
RUN_CYCLES = 50_000


async def gemm_on_chip(dut, m: int, k: int, n: int):
    tb = SocTB(dut)
    cfg = tb.config
    await tb.reset()
    rng = np.random.default_rng(tb.seed)
    a = rng.integers(-128, 128, (m, k), dtype=np.int64)
    b = rng.integers(-128, 128, (k, n), dtype=np.int64)
    run = run_gemm(a, b, config=cfg)          # plan + commands (+ the model's own run)
    plan, cmds = run.plan, run.commands
    total = cfg.hbm.total_bytes
    # HBM keeps what earlier tests left: start the golden model from the RTL's image
    hbm = np.frombuffer(await tb.bd_read(0, total), np.uint8).copy()
    hbm[plan.a_addr:plan.a_addr + plan.a_bytes] = _c.pack_a(plan, a.astype(np.int8).view(np.uint8))
    hbm[plan.b_addr:plan.b_addr + plan.b_bytes] = _c.pack_b(plan, b.astype(np.int8).view(np.uint8))
    entries = write_ring(hbm, plan.ring_addr, cmds) + 1
    hbm[plan.ring_addr + (entries - 1) * CMD_BYTES:plan.ring_addr + entries * CMD_BYTES] = 0
    W = tb.W
    end = -(-(plan.ring_addr + entries * CMD_BYTES) // W) * W
    await tb.bd_write(0, hbm[:end].tobytes())
    model = ChipModel(cfg, hbm.copy())
    res = model.run_ring(plan.ring_addr, entries, 0, entries - 1)
    assert res.ok and res.irqs == [_c.IRQ_DONE], res.error

    b0 = [await tb.rd(r) for r in ("BYTES_READ", "BYTES_WRITTEN")]
    st = await run_ring(tb, plan.ring_addr, entries, cycles=RUN_CYCLES,
                        what=f"the IRQ of the {m}x{k}x{n} GEMM ({len(cmds)} commands)")
    # the byte counters count every beat of the tiles' DMA, several tiles per cycle too
    moved = [sum(c.desc.total for c in cmds if c.opcode == op)
             for op in (Opcode.DMA_LOAD, Opcode.DMA_STORE)]
    got_bytes = [(await tb.rd(r) - b) % (1 << 32) for r, b in zip(("BYTES_READ",
                                                                    "BYTES_WRITTEN"), b0)]
    assert got_bytes == moved, f"BYTES_READ/WRITTEN moved {got_bytes}, the program {moved}"
    cycles = st["cycles"]
    assert st["INTR_STATUS"] == INTR_DONE, f"INTR_STATUS {st['INTR_STATUS']:#x}, ERROR_CODE " \
        f"{st['ERROR_CODE']:#x}, ERROR_ADDR {st['ERROR_ADDR']:#x}"
    assert st["ERROR_CODE"] == 0
    assert st["IRQ_VALUE"] == _c.IRQ_DONE
    assert st["COMPLETIONS"] == res.completed == len(cmds)
    assert st["RING_HEAD"] == entries - 1

    got = np.frombuffer(await tb.bd_read(0, total), np.uint8)
    c = _c.unpack_c(plan, got).view(np.int32)
    ref = (a @ b).astype(np.int32)               # int64 product, wrapped like the chip
    assert np.array_equal(c, ref), f"C differs from int64 numpy:\n{c}\nvs\n{ref}"
    diff = np.flatnonzero(got != res.hbm)
    assert diff.size == 0, f"HBM differs from models.chip at {diff.size} bytes, first " \
                           f"{[hex(int(x)) for x in diff[:8]]}"
    rl = run.roofline
    tb.log.info("GEMM %dx%dx%d on %s: %d commands, %d cycles doorbell->IRQ; stream "
                "roofline %.0f cycles (%s), shape roofline %.0f", m, k, n, cfg.name,
                len(cmds), cycles, rl.bound_cycles, rl.limiter, run.shape_roofline.bound_cycles)


@cocotb.test()
async def test_gemm_8x8x8(dut):
    """8x8x8 INT8 GEMM on both tiles from HBM, doorbell to interrupt."""
    await gemm_on_chip(dut, 8, 8, 8)


@cocotb.test()
async def test_gemm_odd(dut):
    """6x10x5: no dimension a multiple of the array."""
    await gemm_on_chip(dut, 6, 10, 5)


# --- DISPATCH (the MoE dispatch unit, issue 15) ------------------------------------------
async def dispatch_program(dut, *, bad: bool):
    """Host-written ranking in HBM -> tile 0 DMA load -> BARRIER -> DMA store to the
    descriptor's rank_addr -> DISPATCH (drop) -> DISPATCH (reroute, same ranking, own
    tables) -> IRQ -> HALT; whole HBM image, COMPLETIONS, DISPATCH_KEPT / DROPPED vs
    models.chip. ``bad``: the second DISPATCH reads a ranking with a repeated id
    (ERROR_CODE = DISPATCH | BAD_RANK << 8 at its address, no later command runs)."""
    from models.dma import Descriptor as DmaDesc, DmaDir
    from models.isa import Command, Sram, error_word
    from models.moe_dispatch import Descriptor, DispatchError
    from tb.moe_dispatch.seq import put_ranking, random_ranking

    tb = SocTB(dut)
    cfg = tb.config
    await tb.reset()
    rng = np.random.default_rng(tb.seed)
    total = cfg.hbm.total_bytes
    T, E, k, stride = 24, min(8, cfg.soc.dispatch_experts), 2, 8
    src, rank, tables, ring = 0x1000, 0x2000, 0x3000, 0x7000
    drop = Descriptor(tokens=T, experts=E, top_k=k, policy=0, capacity=5, rank_stride=stride,
                      rank_addr=rank, slot_addr=tables, slot_token_addr=tables + 0x200,
                      counts_addr=tables + 0x400, drop_slot=T * k)
    rer = Descriptor(**{**drop.to_payload(), "policy": 1, "slot_addr": tables + 0x800,
                        "slot_token_addr": tables + 0xA00, "counts_addr": tables + 0xC00})
    if bad:
        rer = Descriptor(**{**rer.to_payload(), "rank_addr": src + 0x400})
    n = T * stride
    cmds = [Command.load(0, Sram.ACT, DmaDesc(DmaDir.LOAD, src, 0, n)), Command.barrier([0]),
            Command.store(0, Sram.ACT, DmaDesc(DmaDir.STORE, 0, rank, n)),
            Command.moe_dispatch(drop), Command.moe_dispatch(rer),
            Command.irq(_c.IRQ_DONE), Command.halt()]
    hbm = np.frombuffer(await tb.bd_read(0, total), np.uint8).copy()
    staged = Descriptor(**{**drop.to_payload(), "rank_addr": src})
    put_ranking(hbm, staged, random_ranking(rng, T, E, hot=int(rng.integers(E))))
    if bad:
        r = random_ranking(rng, T, E)
        r[T // 2, 1] = r[T // 2, 0]
        put_ranking(hbm, rer, r)
    entries = write_ring(hbm, ring, cmds) + 1
    hbm[ring + (entries - 1) * CMD_BYTES:ring + entries * CMD_BYTES] = 0
    await tb.bd_write(0, hbm[:-(-(ring + entries * CMD_BYTES) // tb.W) * tb.W].tobytes())
    res = ChipModel(cfg, hbm.copy()).run_ring(ring, entries, 0, entries - 1)
    st = await run_ring(tb, ring, entries, cycles=RUN_CYCLES, what="the DISPATCH program")
    if bad:
        assert res.error.code != 0 and res.error.detail == DispatchError.BAD_RANK
        assert st["ERROR_CODE"] == error_word(res.error), \
            f"ERROR_CODE {st['ERROR_CODE']:#x}, model {error_word(res.error):#x}"
        assert st["ERROR_ADDR"] == res.error_addr == ring + 4 * CMD_BYTES
    else:
        assert res.ok and res.irqs == [_c.IRQ_DONE], res.error
        assert st["ERROR_CODE"] == 0 and st["IRQ_VALUE"] == _c.IRQ_DONE
    assert st["COMPLETIONS"] == res.completed, (st["COMPLETIONS"], res.completed)
    last = res.stats["dispatch"][-1]
    got = (await tb.rd("DISPATCH_KEPT"), await tb.rd("DISPATCH_DROPPED"))
    assert got == (last.slot_token.size, last.dropped), f"DISPATCH_KEPT/DROPPED {got}"
    img = np.frombuffer(await tb.bd_read(0, total), np.uint8)
    diff = np.flatnonzero(img != res.hbm)
    assert diff.size == 0, f"HBM differs from models.chip at {diff.size} bytes, first " \
                           f"{[hex(int(x)) for x in diff[:8]]}"
    tb.log.info("DISPATCH program (%s): %d cycles doorbell->IRQ, kept %d dropped %d",
                "BAD_RANK" if bad else "drop + reroute", st["cycles"], *got)


@cocotb.test()
async def test_dispatch_program(dut):
    """DISPATCH after DMA (FENCE order), drop and reroute, registers and HBM vs models.chip."""
    await dispatch_program(dut, bad=False)


@cocotb.test()
async def test_dispatch_error(dut):
    """A DISPATCH whose ranking is not a permutation stops the chip with IsaError.DISPATCH."""
    await dispatch_program(dut, bad=True)
