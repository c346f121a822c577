"""Reference designs of ``make synth``: the plain INT8 MAC the PE is compared against.

They are not part of the chip. They calibrate the synthesis table (issue 13): what a
registered INT8 multiply-accumulate, in the PE's dataflow (``o_psum = i_psum + a * b``),
reaches on the same FPGA, flow and wrapper, with and without one pipeline stage.
"""
from __future__ import annotations

from amaranth import Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["ReferenceMac"]


class ReferenceMac(wiring.Component):
    """``o_psum <= i_psum + i_a * i_b`` (signed INT8 x INT8 + INT32, wrap-around).

    Parameters
    ----------
    pipelined : bool
        False: one register (the sum). True: the product and ``i_psum`` are registered
        first, then the sum: one pipeline stage between the multiplier and the adder.

    Members
    -------
    i_a, i_b : In(signed(8))
    i_psum : In(signed(32))
    o_psum : Out(signed(32))

    Latency 1 cycle (2 when ``pipelined``). Golden model: ``int32(psum + a * b)``.
    """

    def __init__(self, *, pipelined: bool = False):
        self._pipelined = bool(pipelined)
        super().__init__({"i_a": In(signed(8)), "i_b": In(signed(8)),
                          "i_psum": In(signed(32)), "o_psum": Out(signed(32))})

    def elaborate(self, platform):
        m = Module()
        if self._pipelined:
            prod = Signal(signed(16))
            psum = Signal(signed(32))
            m.d.sync += [prod.eq(self.i_a * self.i_b), psum.eq(self.i_psum)]
            m.d.sync += self.o_psum.eq(psum + prod)
        else:
            m.d.sync += self.o_psum.eq(self.i_psum + self.i_a * self.i_b)
        return m
