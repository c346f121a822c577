"""Test-only top levels: ``lanes`` copies of an FP unit side by side.

The FP units are combinational; a harness puts ``lanes`` of them in parallel behind
flat, wide ports so that a cocotb test applies ``lanes`` vectors with one write per
port and one simulator step (lane i occupies bits ``[i*w, (i+1)*w)`` of each port,
which is the little-endian byte order numpy uses, so packing is a ``tobytes``).

They are not chip blocks: the tests pass them to :func:`tb.runner.run` with
``factory=`` (see tests/sim/test_fp_units_sim.py).
"""
from __future__ import annotations

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from rtl.fp.fp32_add import FP32Adder
from rtl.fp.fp8_mul import FP8Multiplier

__all__ = ["LANES", "FP8MulHarness", "FP32AddHarness", "fp8_mul_harness", "fp32_add_harness"]

#: Vectors per simulator step.
LANES = 32


class FP8MulHarness(wiring.Component):
    """``lanes`` :class:`FP8Multiplier` s: ``o_product[i] = i_a[i] * i_b[i]`` (formats
    per lane).

    Members
    -------
    i_a, i_b : In(8 * lanes)
        FP8 codes, lane i in bits ``8i .. 8i+7``.
    i_fmt_a, i_fmt_b : In(lanes)
        Format select per lane (0 = E4M3, 1 = E5M2).
    o_product : Out(32 * lanes)
        binary32 products. Latency 0 (combinational).
    """

    def __init__(self, lanes: int = LANES):
        if lanes < 1:
            raise ValueError(f"lanes must be >= 1, got {lanes}")
        self.lanes = lanes
        super().__init__({"i_a": In(8 * lanes), "i_b": In(8 * lanes), "i_fmt_a": In(lanes),
                          "i_fmt_b": In(lanes), "o_product": Out(32 * lanes)})

    def elaborate(self, platform):
        m = Module()
        for i in range(self.lanes):
            m.submodules[f"mul_{i}"] = u = FP8Multiplier()
            m.d.comb += [u.i_a.eq(self.i_a[8 * i:8 * i + 8]),
                         u.i_b.eq(self.i_b[8 * i:8 * i + 8]),
                         u.i_fmt_a.eq(self.i_fmt_a[i]), u.i_fmt_b.eq(self.i_fmt_b[i]),
                         self.o_product[32 * i:32 * i + 32].eq(u.o_product)]
        return m


class FP32AddHarness(wiring.Component):
    """``lanes`` :class:`FP32Adder` s: ``o_result[i] = i_a[i] + i_b[i]``.

    Members
    -------
    i_a, i_b : In(32 * lanes)
        binary32 operands, lane i in bits ``32i .. 32i+31``.
    o_result : Out(32 * lanes)
        binary32 sums. Latency 0 (combinational).
    """

    def __init__(self, lanes: int = LANES):
        if lanes < 1:
            raise ValueError(f"lanes must be >= 1, got {lanes}")
        self.lanes = lanes
        super().__init__({"i_a": In(32 * lanes), "i_b": In(32 * lanes),
                          "o_result": Out(32 * lanes)})

    def elaborate(self, platform):
        m = Module()
        for i in range(self.lanes):
            m.submodules[f"add_{i}"] = u = FP32Adder()
            m.d.comb += [u.i_a.eq(self.i_a[32 * i:32 * i + 32]),
                         u.i_b.eq(self.i_b[32 * i:32 * i + 32]),
                         self.o_result[32 * i:32 * i + 32].eq(u.o_result)]
        return m


def fp8_mul_harness(cfg) -> FP8MulHarness:
    """Runner factory (the chip config is not used)."""
    return FP8MulHarness()


def fp32_add_harness(cfg) -> FP32AddHarness:
    """Runner factory (the chip config is not used)."""
    return FP32AddHarness()
