"""Testbench of the chip top (``soc``, rtl/soc/top.py).

* host registers: cocotbext-axi :class:`AxiLiteMaster` on ``s_axil`` (names from the
  compiled RDL, :func:`rtl.regs.description.regmap`);
* HBM: the top's backdoor (``i_bd_*`` / ``o_bd_rdata``, global byte addresses) for bulk
  loads of A, B and the ring and for reading the whole image back;
* while a program runs nothing of Python runs per cycle: the bench awaits a rising
  ``o_irq`` under :func:`tb.common.clocked.bounded` (there is no agent loop).
"""
from __future__ import annotations

import logging

from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
from cocotb.utils import get_sim_time
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from rtl.regs.description import regmap
from tb.common.clocked import CLOCK_NS, ClockedTB, bounded
from tb.common.stream import signal_int

__all__ = ["SocTB", "TXN_CYCLES"]

TXN_CYCLES = 3000


class SocTB(ClockedTB):
    def __init__(self, dut):
        super().__init__(dut)
        cfg = self.config
        self.W = cfg.hbm.data_bytes
        self.regs = regmap(cfg)
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil_"), dut.clk, dut.rst)
        logging.getLogger(f"cocotb.{dut._name}.s_axil_").setLevel(logging.WARNING)
        dut.i_bd_we.value = 0
        dut.i_bd_addr.value = 0
        dut.i_bd_wdata.value = 0

    async def reset(self, cycles: int = 3) -> None:
        """Synchronous reset; no per-cycle agent loop (nothing to tick)."""
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, cycles)
        await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0

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

    # --- HBM backdoor ----------------------------------------------------------------------
    async def bd_write(self, addr: int, data: bytes) -> None:
        W, dut = self.W, self.dut
        assert addr % W == 0 and len(data) % W == 0, "backdoor is word granular"
        for i in range(0, len(data), W):
            await FallingEdge(dut.clk)
            dut.i_bd_addr.value = addr + i
            dut.i_bd_wdata.value = int.from_bytes(data[i:i + W], "little")
            dut.i_bd_we.value = 1
        await FallingEdge(dut.clk)
        dut.i_bd_we.value = 0

    async def bd_read(self, addr: int, n: int) -> bytes:
        W, dut = self.W, self.dut
        assert addr % W == 0 and n % W == 0, "backdoor is word granular"
        out = bytearray()
        await FallingEdge(dut.clk)
        dut.i_bd_addr.value = addr
        for a in range(addr, addr + n, W):
            await FallingEdge(dut.clk)
            out += signal_int(dut.o_bd_rdata).to_bytes(W, "little")
            dut.i_bd_addr.value = a + W
        return bytes(out)

    async def wait_irq(self, *, cycles: int, what: str) -> None:
        if not signal_int(self.dut.o_irq):
            await bounded(RisingEdge(self.dut.o_irq), cycles=cycles, what=what)
