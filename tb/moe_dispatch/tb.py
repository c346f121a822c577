"""Testbench of the MoE dispatch unit (``moe_dispatch``) against cocotbext-axi's AxiRam.

Agents ticked by the ClockedTB loop: the descriptor source (``i_start``) and the
completion sink (``o_done``), both paced; the AxiRam behind ``m_axi`` with random
pauses on its five channels. :meth:`DispatchTB.run` predicts the completion and every
byte of the memory with :func:`models.moe_dispatch.execute` and checks both.
"""
from __future__ import annotations

import logging

import numpy as np
from cocotb.triggers import ClockCycles, FallingEdge
from cocotbext.axi import AxiBus, AxiRam

from models import moe_dispatch as model
from models.moe_dispatch import Descriptor, DispatchError
from rtl.soc.moe_dispatch import desc_layout, done_layout
from tb.common.clocked import ClockedTB
from tb.common.stream import Pacer, StreamSink, StreamSource
from tb.hbm.tb import set_pause

__all__ = ["DispatchTB"]


class DispatchTB(ClockedTB):
    """Parameters: ``dut`` of ``moe_dispatch``; ``stall`` on the streams and AXI channels."""

    def __init__(self, dut, *, stall: float = 0.0, burst: int = 1):
        super().__init__(dut)
        self.size = self.config.hbm.total_bytes
        self.done: list = []
        self.start = self.add(StreamSource(dut, "i_start", desc_layout()))
        self.sink = self.add(StreamSink(dut, "o_done", done_layout(),
                                        on_item=lambda it, c: self.done.append((it, c))))
        self.ram = AxiRam(AxiBus.from_prefix(dut, "m_axi_"), dut.clk, dut.rst, size=self.size)
        logging.getLogger(f"cocotb.{dut._name}.m_axi_").setLevel(logging.WARNING)
        self.set_stalls(stall, burst)

    def set_stalls(self, stall: float, burst: int = 1):
        self.start.pacer = Pacer(stall, burst=burst, rng=self.rng)
        self.sink.pacer = Pacer(stall, burst=burst, rng=self.rng)
        w, r = self.ram.write_if, self.ram.read_if
        set_pause((w.aw_channel, w.w_channel, w.b_channel, r.ar_channel, r.r_channel),
                  self.rng, stall, burst)

    def fault(self, lo: int = 0, hi: int = 0) -> None:
        """AXI accesses to ``[lo, hi)`` answer SLVERR (cocotbext-axi answers SLVERR when
        its memory hook raises; a faulted write does not land); ``fault()`` clears it."""
        ram = self.ram

        def hook(orig):
            async def f(address, data_or_length):
                if lo <= address < hi:
                    raise RuntimeError(f"injected SLVERR at {address:#x}")
                return await orig(address, data_or_length)
            return f
        for port, name in ((ram.read_if, "_read"), (ram.write_if, "_write")):
            orig = getattr(type(port), name).__get__(port)
            setattr(port, name, hook(orig) if hi > lo else orig)

    def image(self) -> np.ndarray:
        return np.frombuffer(bytes(self.ram.read(0, self.size)), np.uint8).copy()

    def load(self, img: np.ndarray) -> None:
        self.ram.write(0, img.tobytes())

    async def run(self, d: Descriptor, *, timeout: int = 200_000, expect=None,
                  exempt=(), corrupt: int | None = None):
        """Send ``d``, wait for its completion; check the code, kept / dropped and every
        byte of the memory against the model. Returns (code, cycles accepted -> done).

        ``expect``: the code when it is not the model's (an injected AXI error): then
        nothing is written if the model's writes are not wanted (``exempt`` None) or the
        model's image is wanted except in the ``exempt`` byte ranges. ``corrupt``: flip
        that byte of the expected image (the self-check)."""
        before = self.image()
        want = before.copy()
        code, disp = model.execute(d, want, self.config)
        if expect is not None:
            code = expect
            if exempt is None:
                want = before.copy()
        if corrupt is not None:
            want[corrupt] ^= 0x5A
        n0 = len(self.done)
        self.start.send(d.to_payload())
        await self.wait_until(lambda: len(self.done) > n0, timeout=timeout,
                              what=f"completion of {d}")
        item, cycle = self.done[n0]
        got = int(item["err"])
        assert got == code, f"{d}: completion {DispatchError(got).name}, model {code.name}"
        if code == DispatchError.OK and expect is None:
            kept, dropped = int(disp.slot_token.size), disp.dropped
            assert (item["kept"], item["dropped"]) == (kept, dropped), \
                f"{d}: kept/dropped {item['kept']}/{item['dropped']}, model {kept}/{dropped}"
        after = self.image()
        for lo, hi in (exempt or ()) if expect is not None else ():
            after[lo:hi] = want[lo:hi]          # may hold anything
        diff = np.nonzero(after != want)[0]
        assert diff.size == 0, (f"{d}: {diff.size} bytes differ from the model, first at "
                                f"{diff[0]:#x}: got {after[diff[0]]}, want {want[diff[0]]}")
        return DispatchError(got), cycle - self.start.last_fire + 1

    async def pulse_reset(self, cycles: int = 3):
        """Synchronous reset now (the agent loop keeps running); queued items dropped."""
        await FallingEdge(self.dut.clk)
        self.start.clear()
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, cycles)
        await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0

    def finish(self):
        assert not self.sink.protocol_errors, self.sink.protocol_errors[:5]
