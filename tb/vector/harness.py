"""Test-only top level: ``LANES`` FP32Multipliers side by side (like tb/fp/harness.py)."""
from __future__ import annotations

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rtl.fp.fp32_mul import FP32Multiplier

__all__ = ["LANES", "FP32MulHarness", "fp32_mul_harness"]

LANES = 32


class FP32MulHarness(wiring.Component):
    """``lanes`` :class:`FP32Multiplier` s: ``o_product[i] = i_a[i] * i_b[i]``.

    Members
    -------
    i_a, i_b : In(32 * lanes)
        binary32 operands, lane i in bits ``32i .. 32i+31``.
    o_product : Out(32 * lanes)
        Latency 0 (combinational).
    """

    def __init__(self, lanes: int = LANES):
        if lanes < 1:
            raise ValueError(f"lanes must be >= 1, got {lanes}")
        self.lanes = lanes
        super().__init__({"i_a": In(32 * lanes), "i_b": In(32 * lanes),
                          "o_product": Out(32 * lanes)})

    def elaborate(self, platform):
        m = Module()
        for i in range(self.lanes):
            m.submodules[f"mul_{i}"] = u = FP32Multiplier()
            m.d.comb += [u.i_a.eq(self.i_a[32 * i:32 * i + 32]),
                         u.i_b.eq(self.i_b[32 * i:32 * i + 32]),
                         self.o_product[32 * i:32 * i + 32].eq(u.o_product)]
        return m


def fp32_mul_harness(cfg) -> FP32MulHarness:
    """Runner factory (the chip config is not used)."""
    return FP32MulHarness()
