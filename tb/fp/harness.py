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
    """``lanes`` :class:`FP8Multiplier` s: ``product[i] = a[i] * b[i]`` (formats per lane).

    Members
    -------
    a, b : In(8 * lanes)
        FP8 codes, lane i in bits ``8i .. 8i+7``.
    fmt_a, fmt_b : In(lanes)
        Format select per lane (0 = E4M3, 1 = E5M2).
    product : Out(32 * lanes)
        binary32 products. Latency 0 (combinational).
    """

    def __init__(self, lanes: int = LANES):
        if lanes < 1:
            raise ValueError(f"lanes must be >= 1, got {lanes}")
        self.lanes = lanes
        super().__init__({"a": In(8 * lanes), "b": In(8 * lanes), "fmt_a": In(lanes),
                          "fmt_b": In(lanes), "product": Out(32 * lanes)})

    def elaborate(self, platform):
        m = Module()
        for i in range(self.lanes):
            m.submodules[f"mul_{i}"] = u = FP8Multiplier()
            m.d.comb += [u.a.eq(self.a[8 * i:8 * i + 8]), u.b.eq(self.b[8 * i:8 * i + 8]),
                         u.fmt_a.eq(self.fmt_a[i]), u.fmt_b.eq(self.fmt_b[i]),
                         self.product[32 * i:32 * i + 32].eq(u.product)]
        return m


class FP32AddHarness(wiring.Component):
    """``lanes`` :class:`FP32Adder` s: ``result[i] = a[i] + b[i]``.

    Members
    -------
    a, b : In(32 * lanes)
        binary32 operands, lane i in bits ``32i .. 32i+31``.
    result : Out(32 * lanes)
        binary32 sums. Latency 0 (combinational).
    """

    def __init__(self, lanes: int = LANES):
        if lanes < 1:
            raise ValueError(f"lanes must be >= 1, got {lanes}")
        self.lanes = lanes
        super().__init__({"a": In(32 * lanes), "b": In(32 * lanes), "result": Out(32 * lanes)})

    def elaborate(self, platform):
        m = Module()
        for i in range(self.lanes):
            m.submodules[f"add_{i}"] = u = FP32Adder()
            m.d.comb += [u.a.eq(self.a[32 * i:32 * i + 32]), u.b.eq(self.b[32 * i:32 * i + 32]),
                         self.result[32 * i:32 * i + 32].eq(u.result)]
        return m


def fp8_mul_harness(cfg) -> FP8MulHarness:
    """Runner factory (the chip config is not used)."""
    return FP8MulHarness()


def fp32_add_harness(cfg) -> FP32AddHarness:
    """Runner factory (the chip config is not used)."""
    return FP32AddHarness()
