"""A small bounded AXI4 manager that issues any AR/AW the bus can carry, one burst at a
time: WRAP and reserved burst types, AxSIZE wider than the bus, bursts across 4 KiB.

cocotbext-axi's ``AxiMaster`` refuses a SIZE wider than the bus and splits at 4 KiB, so
the stub's error paths for those are driven here. Use it instead of an ``AxiMaster``
(both drive the same VALIDs): ``HbmTB(dut, master=False)``. Signals are driven after
the falling edge and handshakes sampled in ``ReadOnly``, like every agent of
:class:`tb.common.clocked.ClockedTB`; every wait is bounded in cycles.
"""
from __future__ import annotations

from cocotb.triggers import FallingEdge, ReadOnly

from tb.common.axi_check import port_signals
from tb.common.clocked import run_seed
from tb.common.stream import signal_int

__all__ = ["RawAxi"]

_OUT = ("arvalid", "araddr", "arlen", "arsize", "arburst", "arid", "awvalid", "awaddr",
        "awlen", "awsize", "awburst", "awid", "wvalid", "wdata", "wstrb", "wlast",
        "rready", "bready")
_IN = ("arready", "awready", "wready", "rvalid", "rdata", "rresp", "rlast", "rid", "bvalid",
       "bresp", "bid")


class RawAxi:
    """Parameters: ``dut`` (clock ``clk``), ``port`` (AXI member, Verilog
    ``<port>__arvalid`` ...), ``W`` data bytes. R and B are always ready."""

    def __init__(self, dut, port: str, W: int):
        self.clk, self.W = dut.clk, W
        self.s = port_signals(dut, port, _OUT + _IN)
        for n in _OUT:
            self.s[n].value = 0
        self.s["rready"].value = 1
        self.s["bready"].value = 1

    async def _until(self, name: str, cycles: int, what: str):
        """Wait (sampling in ReadOnly after each falling edge) until ``name`` is 1; the
        handshake happens at the next rising edge. Returns the sampled inputs."""
        for _ in range(cycles):
            await ReadOnly()
            if signal_int(self.s[name]):
                return {n: signal_int(self.s[n]) for n in _IN}
            await FallingEdge(self.clk)
        raise AssertionError(f"timeout after {cycles} cycles waiting for {what} "
                             f"(run seed {run_seed()})")

    async def _send(self, prefix: str, fields: dict, cycles: int, what: str):
        await FallingEdge(self.clk)
        for n, v in fields.items():
            self.s[prefix + n].value = v
        self.s[prefix + "valid"].value = 1
        await self._until(prefix + "ready", cycles, what)
        await FallingEdge(self.clk)
        self.s[prefix + "valid"].value = 0

    def _ax(self, addr, beats, size, burst, id):
        return {"addr": addr, "len": beats - 1, "size": size, "burst": burst, "id": id}

    async def read(self, addr: int, beats: int, size: int, burst: int, id: int = 0, *,
                   cycles: int) -> tuple[list[int], list[int]]:
        """One read burst; returns (data word per beat, RRESP per beat). Fails if RLAST
        does not come on beat ``beats`` (the checker names the rule too)."""
        what = f"AR {addr:#x} x{beats} size {size} burst {burst}"
        await self._send("ar", self._ax(addr, beats, size, burst, id), cycles, what)
        data, resps = [], []
        for i in range(beats):
            v = await self._until("rvalid", cycles, f"R beat {i} of {what}")
            data.append(v["rdata"])
            resps.append(v["rresp"])
            await FallingEdge(self.clk)
            if v["rlast"] != (i == beats - 1):
                raise AssertionError(f"RLAST={v['rlast']} on beat {i} of {what}")
        return data, resps

    async def write(self, addr: int, words: list[int], size: int, burst: int, id: int = 0, *,
                    strb: list[int] | None = None, cycles: int) -> int:
        """One write burst of ``len(words)`` beats (WSTRB per beat ``strb``, all ones by
        default); returns BRESP."""
        beats = len(words)
        what = f"AW {addr:#x} x{beats} size {size} burst {burst}"
        await self._send("aw", self._ax(addr, beats, size, burst, id), cycles, what)
        strb = strb or [(1 << self.W) - 1] * beats
        for i, (word, st) in enumerate(zip(words, strb)):
            await self._send("w", {"data": word, "strb": st, "last": int(i == beats - 1)},
                             cycles, f"W beat {i} of {what}")
        v = await self._until("bvalid", cycles, f"B of {what}")
        await FallingEdge(self.clk)
        return v["bresp"]
