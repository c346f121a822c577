"""Testbench of the command processor (``cmd_processor``, rtl/soc/cmdproc.py).

* the ring lives in a cocotbext-axi :class:`AxiRam` on ``m_axi`` (random pauses on its
  channels: :meth:`CmdProcTB.set_stalls`);
* the host is cocotbext-axi's :class:`AxiLiteMaster` on ``s_axil`` (registers by name,
  from the same compiled RDL as the DUT);
* one :class:`FakeUnit` per tile queue takes the dispatched commands (random ready) and
  completes them after a random latency (optionally with an error code);
* :class:`tb.cmdproc.program.ScheduleChecker` replays every start and completion on the
  golden model's token and barrier rules; end-of-program registers are compared with
  ``models.chip.ChipModel`` running the same stream.
"""
from __future__ import annotations

import logging

from cocotb.triggers import Event
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiRam

from models.chip import ChipModel
from models.isa import CMD_BYTES, Queue, ring_image
from rtl.regs.description import regmap
from rtl.soc.cmdproc_check import compute_cmd_layout, dma_cmd_layout, done_layout
from rtl.soc.cmdproc_queues import inflight_limit
from tb.common.clocked import ClockedTB, bounded
from tb.common.packing import packer
from tb.common.stream import Pacer, signal_int
from tb.hbm.tb import set_master_stalls, set_pause

__all__ = ["CmdProcTB", "FakeUnit", "RING_BASE", "NAMES"]

NAMES = {Queue.LOAD: "load", Queue.COMPUTE: "compute", Queue.STORE: "store"}
RING_BASE = 0x6000
TXN_CYCLES = 3000


class FakeUnit:
    """A tile's load, compute or store unit: accepts up to ``capacity`` commands (random
    ready; ``rtl.soc.cmdproc_queues.inflight_limit`` of its queue, the tensor core's
    command queue for COMPUTE), each completing ``latency`` cycles after it was accepted
    (a random range), in order, with ``err`` (0, or a code from ``errors``: command
    count -> code)."""

    def __init__(self, tb, t: int, q: Queue):
        d = tb.dut
        n = NAMES[q]
        self.tb, self.t, self.q = tb, t, q
        self.valid = getattr(d, f"o_{n}__{t}__valid")
        self.ready = getattr(d, f"o_{n}__{t}__ready")
        self.payload = getattr(d, f"o_{n}__{t}__payload")
        self.dvalid = getattr(d, f"i_{n}_done__{t}__valid")
        self.dready = getattr(d, f"i_{n}_done__{t}__ready")
        self.dpay = getattr(d, f"i_{n}_done__{t}__payload")
        self.unpack = packer(compute_cmd_layout() if q == Queue.COMPUTE else dma_cmd_layout())[1]
        self.pack_done = packer(done_layout())[0]
        self.pacer = Pacer(0.0, rng=tb.rng)
        self.latency = (1, 12)
        self.capacity = inflight_limit(tb.config, q)
        self.errors: dict[int, int] = {}
        self.count = 0
        self.jobs: list[list[int]] = []     # [cycles left, err], oldest first
        self.ready.value = 0
        self.dvalid.value = 0
        self.dpay.value = 0

    def drive(self, cycle):
        self.ready.value = int(len(self.jobs) < self.capacity and self.pacer())
        if self.jobs and self.jobs[0][0] <= 0:
            self.dvalid.value = 1
            self.dpay.value = self.pack_done({"err": self.jobs[0][1]})
        else:
            self.dvalid.value = 0

    def sample(self, cycle):
        if signal_int(self.tb.dut.o_unit_reset):
            self.jobs = []                  # soft reset: in-flight work dropped
            return
        if self.jobs and self.jobs[0][0] <= 0 and signal_int(self.dvalid) \
                and signal_int(self.dready):
            self.tb.on_done(self.t, self.q, cycle, self.jobs.pop(0)[1])
        for job in self.jobs:
            job[0] -= 1
        if signal_int(self.valid) and signal_int(self.ready):
            pay = self.unpack(signal_int(self.payload))
            if self.q == Queue.COMPUTE:
                pay = {k: int(v) for k, v in pay.items()}
            else:
                pay = {"sram": int(pay["sram"]), "desc": {k: int(v) for k, v in pay["desc"].items()}}
            self.jobs.append([self.tb.rng.randint(*self.latency), self.errors.get(self.count, 0)])
            self.count += 1
            self.tb.on_start(self.t, self.q, pay, cycle)


class _IrqMonitor:
    def __init__(self, tb):
        self.tb = tb
        self.event = Event()

    def drive(self, cycle):
        pass

    def sample(self, cycle):
        if signal_int(self.tb.dut.o_irq):
            self.event.set()


class CmdProcTB(ClockedTB):
    def __init__(self, dut):
        super().__init__(dut)
        cfg = self.config
        self.regs = regmap(cfg)
        self.ram = AxiRam(AxiBus.from_prefix(dut, "m_axi_"), dut.clk, dut.rst,
                          size=cfg.hbm.total_bytes)
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil_"), dut.clk, dut.rst)
        for name in ("m_axi_", "s_axil_"):
            logging.getLogger(f"cocotb.{dut._name}.{name}").setLevel(logging.WARNING)
        for n in ("i_bytes_read_incr", "i_bytes_written_incr", "i_dispatch_done__valid",
                  "i_dispatch_done__payload", "o_dispatch__ready"):
            getattr(dut, n).value = 0
        self.units = {(t, q): self.add(FakeUnit(self, t, q))
                      for t in range(cfg.soc.tiles) for q in Queue}
        self.irq = self.add(_IrqMonitor(self))
        self.checker = None
        self.events = []             # (cycle, "start"/"done", t, q)

    # --- stalls ---------------------------------------------------------------------------
    def set_stalls(self, stall: float, burst: int = 1) -> None:
        r = self.ram
        set_pause((r.write_if.aw_channel, r.write_if.w_channel, r.write_if.b_channel,
                   r.read_if.ar_channel, r.read_if.r_channel), self.rng, stall, burst)
        set_master_stalls(self.axil, self.rng, stall, burst)
        for u in self.units.values():
            u.pacer = Pacer(stall, burst=burst, rng=self.rng)

    # --- unit events -> schedule checker ---------------------------------------------------
    def on_start(self, t, q, payload, cycle):
        self.events.append((cycle, "start", t, q))
        if self.checker is not None:
            self.checker.start(t, q, payload, cycle)

    def on_done(self, t, q, cycle, err):
        self.events.append((cycle, "done", t, q))
        if self.checker is not None:
            self.checker.done(t, q, cycle, ok=(err == 0))

    # --- registers -------------------------------------------------------------------------
    async def rd(self, name: str) -> int:
        addr = self.regs[name].address
        r = await bounded(self.axil.read(addr, 4), cycles=TXN_CYCLES, what=f"read {name}")
        assert int(r.resp) == 0, f"read {name}: resp {r.resp}"
        return int.from_bytes(r.data, "little")

    async def wr(self, name: str, value: int) -> None:
        addr = self.regs[name].address
        r = await bounded(self.axil.write(addr, value.to_bytes(4, "little")), cycles=TXN_CYCLES,
                          what=f"write {name}")
        assert int(r.resp) == 0, f"write {name}: resp {r.resp}"

    async def field(self, path: str) -> int:
        reg, f = self.regs.field(path)
        return ((await self.rd(reg.path)) & f.mask) >> f.lsb

    async def setup_ring(self, entries: int) -> None:
        self.entries = entries
        await self.wr("RING_BASE_LO", RING_BASE)
        await self.wr("RING_BASE_HI", 0)
        await self.wr("RING_SIZE", entries)
        await self.wr("INTR_ENABLE", 0b111)
        await self.wr("CONTROL", 1)

    def write_ring(self, start: int, cmds) -> int:
        """Write ``cmds`` at ring entries ``start``.. (wrapping); returns the new tail."""
        for k, c in enumerate(cmds):
            i = (start + k) % self.entries
            self.ram.write(RING_BASE + i * CMD_BYTES, ring_image([c]))
        return (start + len(cmds)) % self.entries

    def expect(self, cmds):
        """Arm a fresh schedule checker for ``cmds`` (what the dispatcher will accept)."""
        from tb.cmdproc.program import ScheduleChecker
        self.checker = ScheduleChecker(self.config, cmds)
        return self.checker

    async def wait_irq(self, *, cycles: int, what: str) -> None:
        self.irq.event.clear()
        if signal_int(self.dut.o_irq):
            return
        await bounded(self.irq.event.wait(), cycles=cycles, what=what)

    async def clear_intr(self) -> int:
        v = await self.rd("INTR_STATUS")
        await self.wr("INTR_STATUS", v)
        return v

    def model(self, cmds, start: int):
        """``ChipModel`` result of ``cmds`` as ring entries from ``start``."""
        cm = ChipModel(self.config)
        res = cm.run(cmds, base=0)
        addr = lambda i: RING_BASE + (start + i) % self.entries * CMD_BYTES  # noqa: E731
        return res, addr
