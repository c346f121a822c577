"""Testbench of the chip top (``soc``, rtl/soc/top.py).

* host registers: cocotbext-axi :class:`AxiLiteMaster` on ``s_axil`` (names from the
  compiled RDL, :func:`rtl.regs.description.regmap`);
* HBM through the host's AXI4 port: cocotbext-axi :class:`AxiMaster` on ``s_axi_host``
  (:meth:`SocTB.host_write` / :meth:`SocTB.host_read`, global byte addresses, split at
  ``hbm.interleave_bytes`` granules and into bursts of ``models.axi_noc.max_beats``: the
  port's contract, docs/chip.md);
* HBM: the top's backdoor (``i_bd_*`` / ``o_bd_rdata``, global byte addresses) for bulk
  loads of A, B and the ring and for reading the whole image back;
* random stalls (:meth:`SocTB.set_stalls`): cocotbext-axi pause generators on every
  channel of both host ports, seeded from ``tb.seed`` (the master withholds AW / W / AR
  valid and B / R ready);
* while a program runs nothing of Python runs per cycle: the bench awaits a rising
  ``o_irq`` under :func:`tb.common.clocked.bounded` (there is no agent loop).
"""
from __future__ import annotations

import logging
import random

from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiBus, AxiLiteBus, AxiLiteMaster, AxiMaster

from models.axi_noc import max_beats
from rtl.regs.description import regmap
from rtl.soc.top import RESET_HOLD
from tb.common.backdoor import backdoor_read, backdoor_write
from tb.common.clocked import CLOCK_NS, ClockedTB, bounded
from tb.common.stream import signal_int

__all__ = ["SocTB", "TXN_CYCLES"]

TXN_CYCLES = 3000
#: Extra cycles allowed per data beat of a host transfer (stalls included).
BEAT_CYCLES = 16


def _pauses(rng: random.Random, p: float):
    """A cocotbext-axi pause generator: True (stall this cycle) with probability ``p``,
    in runs (a stall or a go lasts 1..4 cycles), so both short and long stalls occur."""
    while True:
        stall = rng.random() < p
        for _ in range(rng.randint(1, 4)):
            yield stall


class SocTB(ClockedTB):
    """Clock, reset, the host's two ports (AXI4-Lite registers, AXI4 into HBM) and the
    HBM backdoor of the chip top.

    Parameters
    ----------
    dut : cocotb handle
        The ``soc`` top.
    stall : float
        Probability of a random stall on every channel of both host ports (0: none);
        :meth:`set_stalls` changes it later.
    """

    def __init__(self, dut, *, stall: float = 0.0):
        super().__init__(dut)
        cfg = self.config
        self.W = cfg.hbm.data_bytes
        self.regs = regmap(cfg)
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil_"), dut.clk, dut.rst)
        self.host = AxiMaster(AxiBus.from_prefix(dut, "s_axi_host_"), dut.clk, dut.rst,
                              max_burst_len=max_beats(cfg))
        for port in ("s_axil_", "s_axi_host_"):
            logging.getLogger(f"cocotb.{dut._name}.{port}").setLevel(logging.WARNING)
        dut.i_bd_we.value = 0
        dut.i_bd_addr.value = 0
        dut.i_bd_wdata.value = 0
        self.stall = 0.0
        self.set_stalls(stall)

    def _channels(self):
        """Every cocotbext-axi channel of both host ports (sources and sinks)."""
        for m in (self.axil, self.host):
            w, r = m.write_if, m.read_if
            yield from (w.aw_channel, w.w_channel, w.b_channel, r.ar_channel, r.r_channel)

    def set_stalls(self, p: float) -> None:
        """Random stalls with probability ``p`` on every channel of both host ports (one
        generator per channel, seeded from ``tb.seed``; ``p`` = 0 removes them)."""
        self.stall = p
        for k, ch in enumerate(self._channels()):
            ch.set_pause_generator(_pauses(random.Random(self.seed * 16 + k), p) if p else None)
        if p:
            self.log.info("random stalls p=%.2f on s_axil and s_axi_host (seed %d)", p,
                          self.seed)

    async def reset(self, cycles: int = 3) -> None:
        """Synchronous reset; no per-cycle agent loop (nothing to tick). Returns once the
        chip left reset (``rtl.soc.top.RESET_HOLD`` cycles after ``rst`` fell, + 2), so
        the caller's first handshake cannot land in a cycle in which the chip is still in
        reset. Host transfers in flight are flushed by cocotbext-axi (their calls return
        None)."""
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, cycles)
        await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, RESET_HOLD + 2)
        await FallingEdge(self.dut.clk)

    def now(self) -> int:
        """Clock cycles since time 0."""
        return int(get_sim_time("ns") // CLOCK_NS)

    # --- registers -------------------------------------------------------------------------
    async def rd(self, name: str) -> int:
        r = await bounded(self.axil.read(self.regs[name].address, 4), cycles=TXN_CYCLES,
                          what=f"read {name}")
        assert int(r.resp) == 0, f"read {name}: resp {r.resp}"
        return int.from_bytes(r.data, "little")

    async def wr(self, name: str, value: int) -> None:
        r = await bounded(self.axil.write(self.regs[name].address, value.to_bytes(4, "little")),
                          cycles=TXN_CYCLES, what=f"write {name}")
        assert int(r.resp) == 0, f"write {name}: resp {r.resp}"

    # --- HBM through the host's AXI4 port (s_axi_host) ---------------------------------
    def _granules(self, addr: int, n: int):
        """``(addr, n)`` pieces of a transfer that stay inside one interleave granule (a
        burst crossing one is DECERR: docs/chip.md); cocotbext-axi then splits each into
        bursts of at most ``max_beats`` beats."""
        g = self.config.hbm.interleave_bytes
        while n > 0:
            k = min(n, g - addr % g)
            yield addr, k
            addr, n = addr + k, n - k

    def _cycles(self, n: int) -> int:
        return TXN_CYCLES + BEAT_CYCLES * (n // self.W + 2)

    async def host_write(self, addr: int, data: bytes, *, check: bool = True) -> int | None:
        """Write ``data`` at HBM byte ``addr`` (any alignment) through ``s_axi_host``;
        return the worst response (0 OKAY, 2 SLVERR, 3 DECERR; None if a reset flushed
        it). ``check``: assert OKAY."""
        worst = 0
        for a, k in self._granules(addr, len(data)):
            r = await bounded(self.host.write(a, data[a - addr:a - addr + k]),
                              cycles=self._cycles(k), what=f"host write of {k} bytes at {a:#x}")
            if r is None:
                return None
            worst = max(worst, int(r.resp))
        assert not check or worst == 0, f"host write {addr:#x}+{len(data)}: resp {worst}"
        return worst

    async def host_read(self, addr: int, n: int, *, check: bool = True) -> bytes:
        """``n`` bytes of HBM from byte ``addr`` (any alignment) through ``s_axi_host``.
        ``check``: assert every burst answered OKAY (:meth:`host_read_resp` returns the
        response too)."""
        data, worst = await self.host_read_resp(addr, n)
        assert not check or worst == 0, f"host read {addr:#x}+{n}: resp {worst}"
        return data

    async def host_read_resp(self, addr: int, n: int) -> tuple[bytes, int | None]:
        """(data, worst response) of :meth:`host_read`; response None if a reset flushed it."""
        out, worst = bytearray(), 0
        for a, k in self._granules(addr, n):
            r = await bounded(self.host.read(a, k), cycles=self._cycles(k),
                              what=f"host read of {k} bytes at {a:#x}")
            if r is None:
                return bytes(out), None
            out += r.data
            worst = max(worst, int(r.resp))
        return bytes(out), worst

    # --- HBM backdoor ----------------------------------------------------------------------
    async def bd_write(self, addr: int, data: bytes) -> None:
        await backdoor_write(self.dut, self.W, addr, data)

    async def bd_read(self, addr: int, n: int) -> bytes:
        assert addr % self.W == 0 and n % self.W == 0, "backdoor is word granular"
        return await backdoor_read(self.dut, self.W, addr, n)

    async def wait_irq(self, *, cycles: int, what: str) -> None:
        if not signal_int(self.dut.o_irq):
            await bounded(RisingEdge(self.dut.o_irq), cycles=cycles, what=what)
