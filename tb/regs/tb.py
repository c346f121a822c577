"""Testbench for :class:`rtl.regs.block.HostRegs` (``host_regs``).

The host is cocotbext-axi's :class:`AxiLiteMaster` on ``s_axil`` (random pauses on all
five channels: :meth:`RegsTB.set_stalls`), or, for tests that need exact control of
AW/W order, WSTRB patterns and ready delays, :class:`RawAxiLite` (``raw=True``).
:class:`tb.regs.model.RegsModel` drives the hardware inputs and checks every cycle.
The register map comes from the same compiled RDL as the DUT (``regmap(config)``).
"""
from __future__ import annotations

import logging
from collections import deque

from cocotb.triggers import ClockCycles, Event
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from rtl.regs.description import RegMap, regmap
from tb.common.axi_check import AxiSlaveChecker
from tb.common.clocked import ClockedTB, bounded
from tb.common.stream import signal_int
from tb.hbm.tb import set_master_stalls
from tb.regs.model import RegsModel

__all__ = ["RegsTB", "RawAxiLite", "AXIL_PREFIX", "STALL_MODES"]

#: Amaranth names the ports s_axil__awaddr ...; cocotb-bus adds the second "_".
AXIL_PREFIX = "s_axil_"
#: (name, pause probability, longest pause) on every channel
STALL_MODES = [("no stalls", 0.0, 1), ("random stalls", 0.3, 1), ("bursty stalls", 0.3, 8)]
#: cycles any one bus transaction may take, stalls included
TXN_CYCLES = 2000


class _Op:
    def __init__(self, **kw):
        self.__dict__.update(kw)
        self.done = Event()
        self.result = None


class RawAxiLite:
    """A hand-driven AXI4-Lite host (an agent): per write, AW valid from cycle
    ``aw_delay``, W valid from ``w_delay``, B ready from ``b_delay`` (counted from the
    start of the write); per read, AR from ``ar_delay``, R ready from ``r_delay``.
    Writes and reads are issued in order on their own channels, concurrently."""

    def __init__(self, dut):
        g = lambda n: getattr(dut, f"s_axil__{n}")   # noqa: E731
        self.s = {n: g(n) for n in ("awvalid", "awready", "awaddr", "awprot", "wvalid",
                                    "wready", "wdata", "wstrb", "bvalid", "bready", "bresp",
                                    "arvalid", "arready", "araddr", "arprot", "rvalid",
                                    "rready", "rdata", "rresp")}
        for n in ("awvalid", "awaddr", "awprot", "wvalid", "wdata", "wstrb", "bready",
                  "arvalid", "araddr", "arprot", "rready"):
            self.s[n].value = 0
        self.wq: deque = deque()
        self.rq: deque = deque()
        self.w = self.r = None

    async def write(self, addr, data, strb=0xF, *, aw_delay=0, w_delay=0, b_delay=0) -> int:
        op = _Op(addr=addr, data=data, strb=strb, aw=aw_delay, wd=w_delay, bd=b_delay, t=0,
                 aw_done=False, w_done=False)
        self.wq.append(op)
        await bounded(op.done.wait(), cycles=TXN_CYCLES + aw_delay + w_delay + b_delay,
                      what=f"raw write {addr:#x}")
        return op.result

    async def read(self, addr, *, ar_delay=0, r_delay=0) -> tuple[int, int]:
        op = _Op(addr=addr, ar=ar_delay, rd=r_delay, t=0, ar_done=False)
        self.rq.append(op)
        await bounded(op.done.wait(), cycles=TXN_CYCLES + ar_delay + r_delay,
                      what=f"raw read {addr:#x}")
        return op.result

    def drive(self, cycle):
        s = self.s
        if self.w is None and self.wq:
            self.w = self.wq.popleft()
        w = self.w
        if w is not None:
            s["awaddr"].value, s["wdata"].value, s["wstrb"].value = w.addr, w.data, w.strb
            s["awvalid"].value = int(not w.aw_done and w.t >= w.aw)
            s["wvalid"].value = int(not w.w_done and w.t >= w.wd)
            s["bready"].value = int(w.t >= w.bd)
        else:
            s["awvalid"].value = s["wvalid"].value = s["bready"].value = 0
        if self.r is None and self.rq:
            self.r = self.rq.popleft()
        r = self.r
        if r is not None:
            s["araddr"].value = r.addr
            s["arvalid"].value = int(not r.ar_done and r.t >= r.ar)
            s["rready"].value = int(r.t >= r.rd)
        else:
            s["arvalid"].value = s["rready"].value = 0

    def sample(self, cycle):
        v = lambda n: signal_int(self.s[n])   # noqa: E731
        w = self.w
        if w is not None:
            if v("awvalid") and v("awready"):
                w.aw_done = True
            if v("wvalid") and v("wready"):
                w.w_done = True
            if v("bvalid") and v("bready"):
                w.result = v("bresp")
                w.done.set()
                self.w = None
            w.t += 1
        r = self.r
        if r is not None:
            if v("arvalid") and v("arready"):
                r.ar_done = True
            if v("rvalid") and v("rready"):
                r.result = (v("rdata"), v("rresp"))
                r.done.set()
                self.r = None
            r.t += 1


class RegsTB(ClockedTB):
    """Parameters: ``dut`` of ``host_regs``; ``raw``: a :class:`RawAxiLite` host instead of
    cocotbext-axi's master."""

    def __init__(self, dut, *, raw: bool = False):
        super().__init__(dut)
        self.regs: RegMap = regmap(self.config)
        self.model = RegsModel(dut, self.regs, self.rng, self.log)
        self.raw = None
        self.axil = None
        if raw:
            self.raw = self.add(RawAxiLite(dut))
        else:
            self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, AXIL_PREFIX), dut.clk, dut.rst)
            logging.getLogger(f"cocotb.{dut._name}.{AXIL_PREFIX}").setLevel(logging.WARNING)
            logging.getLogger("cocotb.host_regs.s_axil").setLevel(logging.WARNING)
        self.axil_check = self.add(AxiSlaveChecker(dut, "s_axil", rst=dut.rst, lite=True))
        self.add(self.model)          # after the raw host: samples what it drove
        self.log.info("register map: %d registers, %d address bits, parameters %s",
                      len(self.regs), self.regs.addr_width, dict(self.regs.parameters))

    def set_stalls(self, stall: float, burst: int = 1) -> None:
        set_master_stalls(self.axil, self.rng, stall, burst)

    # --- bus access (every wait bounded) --------------------------------------------------
    async def read(self, addr: int) -> tuple[int, int]:
        """(value, resp) of the 32-bit word at ``addr``."""
        if self.raw:
            return await self.raw.read(addr)
        r = await bounded(self.axil.read(addr, 4), cycles=TXN_CYCLES, what=f"read {addr:#x}")
        return int.from_bytes(r.data, "little"), int(r.resp)

    async def write(self, addr: int, value: int, *, first: int = 0, nbytes: int = 4) -> int:
        """Write bytes ``first .. first+nbytes-1`` of ``value`` into the word at ``addr``
        (cocotbext sets WSTRB to those bytes); returns the response."""
        if self.raw:
            strb = ((1 << nbytes) - 1) << first
            return await self.raw.write(addr, value, strb)
        data = value.to_bytes(4, "little")[first:first + nbytes]
        r = await bounded(self.axil.write(addr + first, data), cycles=TXN_CYCLES,
                          what=f"write {addr:#x}")
        return int(r.resp)

    async def idle(self, cycles: int = 2) -> None:
        """Let ``cycles`` clock edges pass (hardware inputs settle into the model)."""
        await ClockCycles(self.dut.clk, cycles)

    def unmapped(self, n: int) -> list[int]:
        """``n`` random word addresses with no register (gaps and past the end)."""
        space = 1 << self.regs.addr_width
        free = [a for a in range(0, space, 4) if self.regs.at(a) is None]
        return [self.rng.choice(free) for _ in range(n)] if free else []

    def finish(self) -> None:
        self.model.check()
        self.axil_check.finish()
        self.log.info("register model: %d writes committed, %d reads checked", self.model.commits,
                      self.model.reads)
