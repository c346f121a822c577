"""cocotb tests of the command processor (``cmd_processor``): docs/command_processor.md.

While a program runs the test only waits for the interrupt (the fake units and the
schedule checker are agents of the testbench's cycle loop).
"""
from __future__ import annotations

import dataclasses
import random

import cocotb
from cocotb.triggers import ClockCycles

from models.dma import Descriptor, DmaDir, DmaError
from models.isa import CMD_BYTES, Command, Fault, IsaError, Opcode, Queue, error_word
from models.moe_dispatch import FIELD_BITS as DISPATCH_FIELD_BITS
from models.moe_dispatch import Descriptor as DispatchDesc
from models.tensor_cmd import TensorCmd
from tb.cmdproc.dispatch_unit import FakeDispatch
from tb.cmdproc.program import random_compute, random_load, random_program, random_store
from tb.cmdproc.tb import RING_BASE, CmdProcTB
from tb.common.clocked import bounded, trials
from tb.tensor.programs import illegal_cases

INTR_DONE, INTR_ERROR, INTR_HALT = 1, 2, 4
RUN_CYCLES = 40_000


async def start(dut, entries=64, stall=0.0):
    tb = CmdProcTB(dut)
    tb.set_stalls(stall, 4 if stall else 1)
    await tb.reset()
    await tb.setup_ring(entries)
    return tb


def dispatcher_retires(cmds):
    return sum(c.opcode in (Opcode.NOP, Opcode.FENCE, Opcode.IRQ, Opcode.HALT) for c in cmds)


async def wait_idle(tb, what):
    for _ in range(200):
        if await tb.field("STATUS.idle"):
            return
        await ClockCycles(tb.dut.clk, 20)
    raise AssertionError(f"not idle after {what}")


async def run_program(tb, cmds, start_index):
    """Submit ``cmds`` at ring entry ``start_index``, wait for the IRQ, check everything
    against the schedule checker and models.chip. Returns the new tail."""
    res, _ = tb.model(cmds, start_index)
    assert res.ok and res.irqs, res.error
    chk = tb.expect(cmds)
    c0 = await tb.rd("COMPLETIONS")
    tail = tb.write_ring(start_index, cmds)
    await tb.wr("RING_TAIL", tail)
    await tb.wait_irq(cycles=RUN_CYCLES, what=f"the IRQ of a {len(cmds)}-command program")
    intr = await tb.clear_intr()
    assert intr == INTR_DONE, f"INTR_STATUS {intr:#x}"
    assert not chk.errors, "\n".join(chk.errors[:10])
    assert chk.left() == 0, f"{chk.left()} commands never ran"
    assert chk.completed + dispatcher_retires(cmds) == res.completed
    assert await tb.rd("COMPLETIONS") - c0 == res.completed
    assert await tb.rd("RING_HEAD") == tail
    assert await tb.rd("IRQ_VALUE") == res.irqs[-1]
    assert await tb.rd("ERROR_CODE") == 0
    await wait_idle(tb, "the program")
    return tail


@cocotb.test()
async def test_identity_and_idle(dut):
    """ID, capability tiles, idle after reset, head 0."""
    tb = await start(dut)
    assert await tb.rd("ID") == 0x4A4C504E
    assert await tb.field("CAPABILITY.tiles") == tb.config.soc.tiles
    assert await tb.field("STATUS.idle") == 1
    assert await tb.rd("RING_HEAD") == 0


@cocotb.test()
@cocotb.parametrize(stall=[0.0, 0.3])
async def test_programs(dut, stall):
    """Random legal programs (tokens, barriers, fences, NOPs, SYNCs, IRQ); the ring
    wraps; starts checked against the tokens, completions/head/IRQ value vs models.chip."""
    tb = await start(dut, entries=64, stall=stall)
    tail = 0
    peak = 0
    for k in range(trials(2)):
        cmds = random_program(tb.rng, tb.config, tb.rng.randint(4, 10), irq=0x100 + k)
        tail = await run_program(tb, cmds, tail)
        peak = max(peak, tb.checker.peak[Queue.COMPUTE])
        tb.log.info("program %d: %d commands, tail %d, compute commands in flight at "
                    "most %d", k, len(cmds), tail, tb.checker.peak[Queue.COMPUTE])
    # the compute queue overlaps commands at its unit (inflight_limit > 1; with the
    # units' random stalls a command has usually finished before the next is taken)
    if stall == 0:
        assert peak > 1, f"never more than {peak} compute command in flight"
    # perf counters moved: the processor, every queue of some tile, token waits
    assert await tb.rd("CP_BUSY") > 0
    for reg in ("LOAD_BUSY", "COMPUTE_BUSY", "STORE_BUSY"):
        assert sum([await tb.rd(f"TILE[{t}].{reg}") for t in range(tb.config.soc.tiles)]) > 0, reg
    assert sum([await tb.rd(f"TILE[{t}].TOKENS_WAITED")
                for t in range(tb.config.soc.tiles)]) > 0


@cocotb.test()
async def test_drain_and_enable(dut):
    """CONTROL.drain or enable 0: nothing is fetched (head stays, draining shown until
    idle); clearing it runs the program."""
    tb = await start(dut)
    cmds = random_program(tb.rng, tb.config, 3, irq=2)
    tail = tb.write_ring(0, cmds)
    await tb.wr("CONTROL", 0b101)            # enable + drain
    await tb.wr("RING_TAIL", tail)
    await ClockCycles(dut.clk, 100)
    assert await tb.rd("RING_HEAD") == 0
    assert await tb.field("STATUS.idle") == 1
    await tb.wr("CONTROL", 0)                # disabled
    await ClockCycles(dut.clk, 100)
    assert await tb.rd("RING_HEAD") == 0
    await tb.wr("CONTROL", 1)
    await tb.wait_irq(cycles=RUN_CYCLES, what="the IRQ after enable")
    assert await tb.clear_intr() == INTR_DONE
    assert await tb.rd("RING_HEAD") == tail


def _bad_cases(tb):
    cfg, rng = tb.config, tb.rng
    T, W = cfg.soc.tiles, cfg.hbm.data_bytes
    good = Descriptor(dir=DmaDir.LOAD, src=0, dst=0, row_bytes=W)
    return [
        ("opcode 0", Command(0)),
        ("opcode 200", Command(200)),
        ("bad tile", Command.load(T, 0, good, signal_next=1)),
        ("unused field", Command(Opcode.NOP, arg=1)),
        ("sync queue 3", Command(Opcode.SYNC, queue=3)),
        ("token on load prev", Command.load(0, 0, good, wait_prev=1)),
        ("barrier mask", Command.barrier([T])),
        ("sram 3", Command.load(0, 3, good)),
        ("dir", Command.load(0, 0, Descriptor(dir=DmaDir.STORE, src=0, dst=0, row_bytes=W))),
        ("misaligned", Command.load(0, 0, Descriptor(src=1, dst=0, row_bytes=W))),
        ("window", Command.load(0, 0, Descriptor(src=cfg.hbm.total_bytes - W, dst=0,
                                                 row_bytes=2 * W))),
        ("zero length", Command.load(0, 1, Descriptor(src=0, dst=0, row_bytes=0))),
        ("tensor count 0", Command.compute(1 % T, TensorCmd(count=0))),
        # every tensor-command rule (the ISA check reuses the tensor core's)
        *((f"tensor {code.name} #{i}", Command.compute(i % T, cmd))
          for i, (code, cmd) in enumerate(illegal_cases(cfg))),
        ("token overflow", None),
    ]


@cocotb.test()
async def test_errors(dut):
    """Each illegal command after a legal prefix: ERROR_CODE (code | detail << 8),
    ERROR_ADDR, the error interrupt, head at the failing command, the prefix completed,
    idle (no hang); then a soft reset clears it and a program runs."""
    tb = await start(dut, entries=64, stall=0.2)
    tail = 0
    for name, bad in _bad_cases(tb):
        prefix = random_program(tb.rng, tb.config, 2, irq=None)
        if bad is None:     # 1 + token_max signals to L2C of tile 0: the last overflows
            prefix = [Command.sync(0, Queue.LOAD, signal_next=1)] * tb.config.soc.token_max
            bad = Command.sync(0, Queue.LOAD, signal_next=1)
        cmds = prefix + [bad, Command.fence(), Command.nop(), Command.irq(7)]
        res, addr = tb.model(cmds, tail)
        assert not res.ok, name
        idx = res.head
        tb.expect(cmds[:idx])
        c0 = await tb.rd("COMPLETIONS")
        new_tail = tb.write_ring(tail, cmds)
        await tb.wr("RING_TAIL", new_tail)
        await tb.wait_irq(cycles=RUN_CYCLES, what=f"the error interrupt of {name}")
        await wait_idle(tb, name)
        intr = await tb.clear_intr()
        assert intr == INTR_ERROR, f"{name}: INTR_STATUS {intr:#x}"
        got = await tb.rd("ERROR_CODE")
        assert got == error_word(res.error), f"{name}: ERROR_CODE {got:#x}, model {res.error}"
        assert await tb.rd("ERROR_ADDR") == addr(res.error_addr // CMD_BYTES), name
        assert await tb.field("STATUS.error") == 1
        assert await tb.rd("RING_HEAD") == (tail + idx) % tb.entries, name
        assert await tb.rd("COMPLETIONS") - c0 == res.completed, name
        assert not tb.checker.errors, "\n".join(tb.checker.errors[:10])
        tb.log.info("%s: %s at entry %d", name, res.error, (tail + idx) % tb.entries)
        await tb.wr("CONTROL", 0b11)               # enable + soft reset
        assert await tb.rd("ERROR_CODE") == 0
        assert await tb.field("STATUS.error") == 0
        tail = new_tail
        assert await tb.rd("RING_HEAD") == tail
    await run_program(tb, random_program(tb.rng, tb.config, 3), tail)


@cocotb.test()
async def test_unit_fault(dut):
    """A load completing with SLVERR: DMA_FAULT, detail SLVERR, that command's address."""
    tb = await start(dut)
    cmds = [random_load(tb.rng, tb.config, 0, signal_next=1),
            random_compute(tb.rng, tb.config, 0, wait_prev=1), Command.irq(1)]
    tb.units[0, Queue.LOAD].errors = {0: int(DmaError.SLVERR)}
    tb.expect(cmds)
    await tb.wr("RING_TAIL", tb.write_ring(0, cmds))
    await tb.wait_irq(cycles=RUN_CYCLES, what="the DMA fault interrupt")
    await wait_idle(tb, "the DMA fault")
    assert await tb.clear_intr() == INTR_ERROR
    assert await tb.rd("ERROR_CODE") == int(IsaError.DMA_FAULT) | int(DmaError.SLVERR) << 8
    assert await tb.rd("ERROR_ADDR") == RING_BASE
    assert await tb.field("TILE[0].STATUS.error") == 1


@cocotb.test()
async def test_watchdog(dut):
    """A compute waiting for a load token that never comes: WATCHDOG (detail COMPUTE) at
    its address after soc.watchdog_cycles, the error interrupt; a soft reset recovers."""
    tb = await start(dut)
    cmds = [Command.nop(), random_compute(tb.rng, tb.config, 1 % tb.config.soc.tiles,
                                          wait_prev=1), Command.irq(3)]
    res, addr = tb.model(cmds, 0)
    assert res.error.code == IsaError.WATCHDOG
    tail = tb.write_ring(0, cmds)
    await tb.wr("RING_TAIL", tail)
    await tb.wait_irq(cycles=tb.config.soc.watchdog_cycles + 5000, what="the watchdog")
    assert await tb.clear_intr() == INTR_ERROR
    assert await tb.rd("ERROR_CODE") == error_word(res.error)
    assert await tb.rd("ERROR_ADDR") == addr(res.error_addr // CMD_BYTES)
    await wait_idle(tb, "the watchdog")
    assert await tb.field("TILE[0].STATUS.compute_busy") == 0
    await tb.wr("CONTROL", 0b11)
    await run_program(tb, random_program(tb.rng, tb.config, 2), tail)


@cocotb.test()
async def test_soft_reset_mid_program(dut):
    """Soft reset while commands are queued, in flight at the units and being fetched:
    idle at once, head = tail, no error, and the next program runs exactly."""
    tb = await start(dut, stall=0.2)
    for u in tb.units.values():
        u.latency = (30, 80)
    cmds = random_program(tb.rng, tb.config, 12, irq=9)
    tb.checker = None
    tail = tb.write_ring(0, cmds)
    await tb.wr("RING_TAIL", tail)
    await bounded(ClockCycles(dut.clk, tb.rng.randint(150, 400)), cycles=1000, what="cycles")
    assert tb.events, "nothing started before the soft reset"
    await tb.wr("CONTROL", 0b11)
    await wait_idle(tb, "the soft reset")
    assert await tb.rd("RING_HEAD") == tail
    assert await tb.rd("ERROR_CODE") == 0
    assert await tb.rd("INTR_STATUS") == 0
    await ClockCycles(dut.clk, 200)          # late unit completions would show up here
    assert await tb.rd("INTR_STATUS") == 0
    for u in tb.units.values():
        u.latency = (1, 12)
    await run_program(tb, random_program(tb.rng, tb.config, 4), tail)


@cocotb.test()
async def test_halt(dut):
    """HALT: fence, halt interrupt, head after it, fetch stops; the doorbell restarts."""
    tb = await start(dut, stall=0.2)
    a = random_program(tb.rng, tb.config, 3, irq=None)
    b = random_program(tb.rng, tb.config, 3, irq=0x55)
    cmds = a + [Command.halt()] + b
    chk = tb.expect(cmds)
    tail = tb.write_ring(0, cmds)
    await tb.wr("RING_TAIL", tail)
    await tb.wait_irq(cycles=RUN_CYCLES, what="the halt interrupt")
    assert await tb.clear_intr() == INTR_HALT
    await wait_idle(tb, "HALT")
    assert await tb.rd("RING_HEAD") == len(a) + 1
    assert chk.left() > 0, "commands after HALT ran before the restart"
    await tb.wr("RING_TAIL", tail)           # the doorbell restarts fetching
    await tb.wait_irq(cycles=RUN_CYCLES, what="the IRQ after restart")
    assert await tb.clear_intr() == INTR_DONE
    assert not chk.errors, "\n".join(chk.errors[:10])
    assert chk.left() == 0
    assert await tb.rd("RING_HEAD") == tail
    assert await tb.rd("IRQ_VALUE") == 0x55


# --- DISPATCH with a fake dispatch unit (docs/moe_dispatch.md) ----------------------------
async def _dispatch_setup(dut):
    tb = await start(dut, stall=0.2)
    tb.checker = None
    fake = tb.add(FakeDispatch(tb))
    return tb, fake


def _dispatch_desc(rng: random.Random) -> DispatchDesc:
    """Any field values: the processor passes the image through, the unit checks it."""
    return DispatchDesc(**{n: rng.getrandbits(b) for n, b in DISPATCH_FIELD_BITS.items()})


@cocotb.test()
async def test_dispatch_after_fence(dut):
    """Long tile DMAs, then DISPATCH, NOP, IRQ: the unit starts after every tile command
    completed, gets the descriptor image, and the command retires with its counts."""
    tb, fake = await _dispatch_setup(dut)
    rng = tb.rng
    for u in tb.units.values():
        u.latency = (40, 90)
    desc = _dispatch_desc(rng)
    kept, dropped = rng.getrandbits(32), rng.getrandbits(32)
    fake.results = [(0, kept, dropped)]
    cmds = [random_load(rng, tb.config, 0), random_store(rng, tb.config, 1),
            random_load(rng, tb.config, 1), Command.moe_dispatch(desc), Command.nop(),
            Command.irq(0x77)]
    c0 = await tb.rd("COMPLETIONS")
    tail = tb.write_ring(0, cmds)
    await tb.wr("RING_TAIL", tail)
    await tb.wait_irq(cycles=RUN_CYCLES, what="the IRQ after DISPATCH")
    assert await tb.clear_intr() == INTR_DONE
    assert len(fake.starts) == 1 and fake.starts[0][1] == desc.to_payload(), fake.starts
    tile_done = [c for c, kind, *_ in tb.events if kind == "done"]
    assert len(tile_done) == 3 and fake.starts[0][0] > max(tile_done), \
        f"DISPATCH started at {fake.starts[0][0]}, tile completions {tile_done}"
    assert await tb.rd("COMPLETIONS") - c0 == len(cmds)
    assert (await tb.rd("DISPATCH_KEPT"), await tb.rd("DISPATCH_DROPPED")) == (kept, dropped)
    assert await tb.rd("ERROR_CODE") == 0 and await tb.rd("IRQ_VALUE") == 0x77
    await wait_idle(tb, "the DISPATCH program")


@cocotb.test()
async def test_dispatch_errors(dut):
    """A unit completion with err 7: ERROR_CODE DISPATCH | 7 << 8 at the command, the
    commands after it never run, the counts registers keep the last good run; a DISPATCH
    with a header field set is BAD_FIELD and never starts the unit."""
    tb, fake = await _dispatch_setup(dut)
    rng = tb.rng
    fake.results = [(0, 11, 22), (7, 99, 99)]
    cmds = [Command.moe_dispatch(_dispatch_desc(rng)), Command.moe_dispatch(_dispatch_desc(rng)),
            random_load(rng, tb.config, 0), Command.irq(1)]
    c0 = await tb.rd("COMPLETIONS")
    await tb.wr("RING_TAIL", tb.write_ring(0, cmds))
    await tb.wait_irq(cycles=RUN_CYCLES, what="the error interrupt")
    assert await tb.clear_intr() == INTR_ERROR
    assert await tb.rd("ERROR_CODE") == int(IsaError.DISPATCH) | 7 << 8
    assert await tb.rd("ERROR_ADDR") == RING_BASE + CMD_BYTES
    assert await tb.rd("COMPLETIONS") - c0 == 1 and not tb.events
    assert (await tb.rd("DISPATCH_KEPT"), await tb.rd("DISPATCH_DROPPED")) == (11, 22)
    await tb.wr("CONTROL", 0b11)                # soft reset, enable
    await wait_idle(tb, "the soft reset")
    n = len(fake.starts)
    bad = dataclasses.replace(Command.moe_dispatch(_dispatch_desc(rng)), tile=1)
    head = await tb.rd("RING_HEAD")
    await tb.wr("RING_TAIL", tb.write_ring(head, [bad, Command.irq(2)]))
    await tb.wait_irq(cycles=RUN_CYCLES, what="the BAD_FIELD interrupt")
    assert await tb.rd("ERROR_CODE") == error_word(Fault(IsaError.BAD_FIELD))
    assert len(fake.starts) == n, "a DISPATCH with a bad header started the unit"


@cocotb.test()
async def test_dispatch_soft_reset(dut):
    """Soft reset while the unit runs: idle, no error, the late completion changes
    nothing; the next DISPATCH starts only after it and retires normally."""
    tb, fake = await _dispatch_setup(dut)
    rng = tb.rng
    fake.latency = (300, 400)
    fake.results = [(0, 5, 6), (0, 7, 8)]
    await tb.wr("RING_TAIL", tb.write_ring(0, [Command.moe_dispatch(_dispatch_desc(rng)),
                                               Command.irq(3)]))
    await tb.wait_until(lambda: fake.starts, timeout=2000, what="the unit's start")
    await tb.wr("CONTROL", 0b11)
    await wait_idle(tb, "the soft reset")
    assert await tb.rd("ERROR_CODE") == 0
    fake.latency = (5, 20)
    head = await tb.rd("RING_HEAD")
    await tb.wr("RING_TAIL", tb.write_ring(head, [Command.moe_dispatch(_dispatch_desc(rng)),
                                                  Command.irq(4)]))
    await tb.wait_irq(cycles=RUN_CYCLES, what="the IRQ of the DISPATCH after the reset")
    assert await tb.clear_intr() == INTR_DONE
    assert len(fake.starts) == 2 and len(fake.dones) == 2
    assert fake.starts[1][0] > fake.dones[0], "the second run started before the first ended"
    assert (await tb.rd("DISPATCH_KEPT"), await tb.rd("DISPATCH_DROPPED")) == (7, 8)
    assert await tb.rd("IRQ_VALUE") == 4
    await bounded(ClockCycles(dut.clk, 10), cycles=20, what="cycles")
