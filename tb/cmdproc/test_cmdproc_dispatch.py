"""cocotb tests of the command processor's DISPATCH (docs/moe_dispatch.md): a fake
dispatch unit on ``o_dispatch`` / ``i_dispatch_done`` next to the fake tile units.

Checked: the FENCE wait (the unit starts only after every earlier tile command
completed), the payload (the command's descriptor image), retirement and the
DISPATCH_KEPT / DISPATCH_DROPPED registers, a failing unit (ERROR_CODE
``DISPATCH | detail << 8`` at the command's address), BAD_FIELD before any start, and a
soft reset while the unit runs (its late completion is ignored, the next DISPATCH waits
for the unit).
"""
from __future__ import annotations

import dataclasses
import random

import cocotb
from cocotb.triggers import ClockCycles

from models.isa import CMD_BYTES, Command, Fault, IsaError, error_word
from models.moe_dispatch import FIELD_BITS, Descriptor
from rtl.soc.moe_dispatch import desc_layout, done_layout
from tb.cmdproc.program import random_load, random_store
from tb.cmdproc.tb import RING_BASE
from tb.cmdproc.test_cmdproc import INTR_DONE, INTR_ERROR, RUN_CYCLES, start, wait_idle
from tb.common.clocked import bounded
from tb.common.packing import packer
from tb.common.stream import Pacer, signal_int


class FakeDispatch:
    """The dispatch unit: one run at a time (ready while idle, random stalls), each
    completing ``latency`` cycles after its start with the next ``(err, kept, dropped)``
    of ``results``. A soft reset does not stop it (as the real unit)."""

    def __init__(self, tb):
        d = tb.dut
        self.tb = tb
        self.valid, self.ready = d.o_dispatch__valid, d.o_dispatch__ready
        self.payload = d.o_dispatch__payload
        self.dvalid, self.dready = d.i_dispatch_done__valid, d.i_dispatch_done__ready
        self.dpay = d.i_dispatch_done__payload
        self.unpack = packer(desc_layout())[1]
        self.pack = packer(done_layout())[0]
        self.pacer = Pacer(0.3, burst=3, rng=tb.rng)
        self.latency = (5, 30)
        self.results: list[tuple[int, int, int]] = []
        self.job = None             # [cycles left, result]
        self.starts: list[tuple[int, dict]] = []
        self.dones: list[int] = []
        self.ready.value = 0
        self.dvalid.value = 0
        self.dpay.value = 0

    def drive(self, cycle):
        self.ready.value = int(self.job is None and self.pacer())
        if self.job is not None and self.job[0] <= 0:
            err, kept, dropped = self.job[1]
            self.dvalid.value = 1
            self.dpay.value = self.pack({"err": err, "kept": kept, "dropped": dropped})
        else:
            self.dvalid.value = 0

    def sample(self, cycle):
        if self.job is not None:
            if self.job[0] <= 0 and signal_int(self.dvalid) and signal_int(self.dready):
                self.job = None
                self.dones.append(cycle)
            else:
                self.job[0] -= 1
        if signal_int(self.valid) and signal_int(self.ready):
            pay = {k: int(v) for k, v in self.unpack(signal_int(self.payload)).items()}
            self.starts.append((cycle, pay))
            self.job = [self.tb.rng.randint(*self.latency), self.results.pop(0)]


async def _setup(dut):
    tb = await start(dut, stall=0.2)
    tb.checker = None
    fake = tb.add(FakeDispatch(tb))
    return tb, fake


def _desc(rng: random.Random) -> Descriptor:
    """Any field values: the processor passes the image through, the unit checks it."""
    return Descriptor(**{n: rng.getrandbits(b) for n, b in FIELD_BITS.items()})


@cocotb.test()
async def test_dispatch_after_fence(dut):
    """Long tile DMAs, then DISPATCH, NOP, IRQ: the unit starts after every tile command
    completed, gets the descriptor image, and the command retires with its counts."""
    tb, fake = await _setup(dut)
    rng = tb.rng
    for u in tb.units.values():
        u.latency = (40, 90)
    desc = _desc(rng)
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
    tb, fake = await _setup(dut)
    rng = tb.rng
    fake.results = [(0, 11, 22), (7, 99, 99)]
    cmds = [Command.moe_dispatch(_desc(rng)), Command.moe_dispatch(_desc(rng)),
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
    bad = dataclasses.replace(Command.moe_dispatch(_desc(rng)), tile=1)
    head = await tb.rd("RING_HEAD")
    await tb.wr("RING_TAIL", tb.write_ring(head, [bad, Command.irq(2)]))
    await tb.wait_irq(cycles=RUN_CYCLES, what="the BAD_FIELD interrupt")
    assert await tb.rd("ERROR_CODE") == error_word(Fault(IsaError.BAD_FIELD))
    assert len(fake.starts) == n, "a DISPATCH with a bad header started the unit"


@cocotb.test()
async def test_dispatch_soft_reset(dut):
    """Soft reset while the unit runs: idle, no error, the late completion changes
    nothing; the next DISPATCH starts only after it and retires normally."""
    tb, fake = await _setup(dut)
    rng = tb.rng
    fake.latency = (300, 400)
    fake.results = [(0, 5, 6), (0, 7, 8)]
    await tb.wr("RING_TAIL", tb.write_ring(0, [Command.moe_dispatch(_desc(rng)),
                                               Command.irq(3)]))
    await tb.wait_until(lambda: fake.starts, timeout=2000, what="the unit's start")
    await tb.wr("CONTROL", 0b11)
    await wait_idle(tb, "the soft reset")
    assert await tb.rd("ERROR_CODE") == 0
    fake.latency = (5, 20)
    head = await tb.rd("RING_HEAD")
    await tb.wr("RING_TAIL", tb.write_ring(head, [Command.moe_dispatch(_desc(rng)),
                                                  Command.irq(4)]))
    await tb.wait_irq(cycles=RUN_CYCLES, what="the IRQ of the DISPATCH after the reset")
    assert await tb.clear_intr() == INTR_DONE
    assert len(fake.starts) == 2 and len(fake.dones) == 2
    assert fake.starts[1][0] > fake.dones[0], "the second run started before the first ended"
    assert (await tb.rd("DISPATCH_KEPT"), await tb.rd("DISPATCH_DROPPED")) == (7, 8)
    assert await tb.rd("IRQ_VALUE") == 4
    await bounded(ClockCycles(dut.clk, 10), cycles=20, what="cycles")
