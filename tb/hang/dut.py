"""A DUT that hangs: its command stream is never ready and ``o_idle`` never rises.

Built by the runner through ``factory=hang_dut`` (it is not a block of the chip). Its
cocotb tests (:mod:`tb.hang.test_hang`) wait on it with a cycle bound, which must fail
naming what it waited for, and without one, which only the runner's wall-clock
watchdog can end (tests/sim/test_hang_sim.py checks both).
"""
from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from models.config import JalapenoConfig

__all__ = ["HangDut", "hang_dut"]


class HangDut(wiring.Component):
    """Accepts nothing and is never idle; a free-running counter keeps the clock used.

    Members
    -------
    i_cmd : In(stream.Signature(8))
        ``ready`` is held low.
    o_idle : Out(1)
        Held low.
    o_count : Out(16)
        Counts cycles since reset.
    """

    i_cmd: In(stream.Signature(8))
    o_idle: Out(1)
    o_count: Out(16)

    def elaborate(self, platform):
        m = Module()
        m.d.sync += self.o_count.eq(self.o_count + 1)
        m.d.comb += [self.i_cmd.ready.eq(0), self.o_idle.eq(0)]
        return m


def hang_dut(cfg: JalapenoConfig) -> HangDut:
    return HangDut()
