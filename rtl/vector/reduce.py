"""Row reductions over the lanes: fixed binary trees of max and binary32 add."""
from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from models.fp32 import CANONICAL_NAN_BITS
from rtl.fp.fp32_add import FP32Adder

__all__ = ["FMax", "RowMax", "RowSum", "NEG_INF", "POS_ZERO"]

NEG_INF = 0xFF80_0000
POS_ZERO = 0


def _is_nan(x):
    return (x[23:31] == 0xFF) & (x[:23] != 0)


class FMax(wiring.Component):
    """``max(a, b)`` of binary32: canonical NaN if either is NaN, else the larger;
    equal values (``+0``/``-0``) give ``a``. Golden model: ``models.vector.fmax``.

    Members
    -------
    a, b : In(32)
    result : Out(32)
    """

    def __init__(self):
        super().__init__({"a": In(32), "b": In(32), "result": Out(32)})

    def elaborate(self, platform):
        m = Module()
        a, b = self.a, self.b
        both_zero = (a[:31] == 0) & (b[:31] == 0)
        b_gt = Signal()
        with m.Switch(Cat(a[31], b[31])):          # (sign a, sign b)
            with m.Case(0b00):
                m.d.comb += b_gt.eq(b[:31] > a[:31])
            with m.Case(0b11):
                m.d.comb += b_gt.eq(b[:31] < a[:31])
            with m.Case(0b01):                      # a negative, b positive
                m.d.comb += b_gt.eq(~both_zero)
            with m.Default():
                m.d.comb += b_gt.eq(0)
        m.d.comb += self.result.eq(Mux(_is_nan(a) | _is_nan(b), CANONICAL_NAN_BITS,
                                       Mux(b_gt, b, a)))
        return m


class _Tree(wiring.Component):
    def __init__(self, lanes: int):
        if lanes < 1:
            raise ValueError(f"lanes must be >= 1, got {lanes}")
        self.lanes = lanes
        super().__init__({"a": In(32 * lanes), "result": Out(32)})

    def elaborate(self, platform):
        m = Module()
        width = 1 << max(0, (self.lanes - 1).bit_length())
        level = [self.a[32 * j:32 * j + 32] for j in range(self.lanes)]
        level += [Const(self.PAD, 32)] * (width - self.lanes)
        depth = 0
        while len(level) > 1:
            nxt = []
            for k in range(0, len(level), 2):
                u = self.UNIT()
                m.submodules[f"l{depth}_{k // 2}"] = u
                m.d.comb += [u.a.eq(level[k]), u.b.eq(level[k + 1])]
                nxt.append(u.result)
            level, depth = nxt, depth + 1
        m.d.comb += self.result.eq(level[0])
        return m


class RowMax(_Tree):
    """Max of ``lanes`` binary32 values by a fixed tree of :class:`FMax` (pad ``-inf``,
    pairs ``(2k, 2k+1)`` level by level). Golden model: ``models.vector.row_max``.

    Members
    -------
    a : In(32 * lanes)
        Lane j in bits ``32j .. 32j+31``.
    result : Out(32)
    """

    PAD = NEG_INF
    UNIT = FMax


class RowSum(_Tree):
    """Sum of ``lanes`` binary32 values by a fixed tree of ``FP32Adder`` (pad ``+0``).
    Golden model: ``models.vector.row_sum``.

    Members
    -------
    a : In(32 * lanes)
    result : Out(32)
    """

    PAD = POS_ZERO
    UNIT = FP32Adder
