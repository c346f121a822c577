"""Row reductions over the lanes: fixed binary trees of max and binary32 add."""
from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from models.fp32 import CANONICAL_NAN_BITS, NEG_INF_BITS
from rtl.fp.f32 import is_nan, magnitude, sign
from rtl.fp.fp32_add import FP32Adder

__all__ = ["FMax", "RowMax", "RowSum"]


class FMax(wiring.Component):
    """``max(i_a, i_b)`` of binary32: canonical NaN if either is NaN, else the larger;
    equal values (``+0``/``-0``) give ``i_a``. Golden model: ``models.vector.fmax``.

    Latency: 0 cycles (two 31-bit magnitude comparators).

    Members
    -------
    i_a, i_b : In(32)
    o_result : Out(32)
    """

    def __init__(self):
        super().__init__({"i_a": In(32), "i_b": In(32), "o_result": Out(32)})

    def elaborate(self, platform):
        m = Module()
        a, b = self.i_a, self.i_b
        both_zero = (magnitude(a) == 0) & (magnitude(b) == 0)
        b_gt = Signal()
        with m.Switch(Cat(sign(a), sign(b))):
            with m.Case(0b00):
                m.d.comb += b_gt.eq(magnitude(b) > magnitude(a))
            with m.Case(0b11):
                m.d.comb += b_gt.eq(magnitude(b) < magnitude(a))
            with m.Case(0b01):                      # a negative, b positive
                m.d.comb += b_gt.eq(~both_zero)
            with m.Default():
                m.d.comb += b_gt.eq(0)
        m.d.comb += self.o_result.eq(Mux(is_nan(a) | is_nan(b), CANONICAL_NAN_BITS,
                                         Mux(b_gt, b, a)))
        return m


class _Tree(wiring.Component):
    """A fixed binary tree of ``UNIT`` over ``lanes`` binary32 values padded with ``PAD``.

    Pipelined: each unit gets ``UNIT_STAGES`` internal registers and each level ends in
    a register, ``UNIT_STAGES + 1`` cycles per level.
    """

    UNIT_STAGES = 0

    def __init__(self, lanes: int, *, pipelined: bool = False):
        if lanes < 1:
            raise ValueError(f"lanes must be >= 1, got {lanes}")
        self.lanes = lanes
        self.pipelined = pipelined
        super().__init__({"i_a": In(32 * lanes), "o_result": Out(32)})

    @property
    def levels(self) -> int:
        return (self.lanes - 1).bit_length()

    @property
    def latency(self) -> int:
        """Cycles from ``i_a`` to ``o_result``."""
        return self.levels * (self.UNIT_STAGES + 1) if self.pipelined else 0

    def _unit(self):
        return self.UNIT(self.UNIT_STAGES) if self.pipelined and self.UNIT_STAGES else \
            self.UNIT()

    def elaborate(self, platform):
        m = Module()
        width = 1 << max(0, (self.lanes - 1).bit_length())
        level = [self.i_a[32 * j:32 * j + 32] for j in range(self.lanes)]
        level += [Const(self.PAD, 32)] * (width - self.lanes)
        depth = 0
        while len(level) > 1:
            nxt = []
            for k in range(0, len(level), 2):
                u = self._unit()
                m.submodules[f"l{depth}_{k // 2}"] = u
                m.d.comb += [u.i_a.eq(level[k]), u.i_b.eq(level[k + 1])]
                if self.pipelined:
                    r = Signal(32, name=f"l{depth}_{k // 2}_q")
                    m.d.sync += r.eq(u.o_result)
                    nxt.append(r)
                else:
                    nxt.append(u.o_result)
            level, depth = nxt, depth + 1
        m.d.comb += self.o_result.eq(level[0])
        return m


class RowMax(_Tree):
    """Max of ``lanes`` binary32 values by a fixed tree of :class:`FMax` (pad ``-inf``,
    pairs ``(2k, 2k+1)`` level by level). Golden model: ``models.vector.row_max``.

    Latency: :attr:`latency` cycles: 0 (``ceil(log2(lanes))`` levels of :class:`FMax`),
    pipelined one per level.

    Members
    -------
    i_a : In(32 * lanes)
        Lane j in bits ``32j .. 32j+31``.
    o_result : Out(32)
    """

    PAD = NEG_INF_BITS
    UNIT = FMax


class RowSum(_Tree):
    """Sum of ``lanes`` binary32 values by a fixed tree of ``FP32Adder`` (pad ``+0``).
    Golden model: ``models.vector.row_sum``.

    Latency: :attr:`latency` cycles: 0 (``ceil(log2(lanes))`` levels of ``FP32Adder``),
    pipelined ``UNIT_STAGES + 1 = 5`` per level (4-stage adders, a register per level).

    Members
    -------
    i_a : In(32 * lanes)
        Lane j in bits ``32j .. 32j+31``.
    o_result : Out(32)
    """

    PAD = 0                     # +0
    UNIT = FP32Adder
    UNIT_STAGES = 4
