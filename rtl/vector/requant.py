"""INT32 -> INT8 requantisation with TFLite's fixed-point multiplier (gemmlowp)."""
from amaranth import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from models.vector import INT32_MAX as _MAX
from models.vector import INT32_MIN as _MIN
from rtl.lib.pipe import cut

__all__ = ["Requant"]


class Requant(wiring.Component):
    """``clamp(MultiplyByQuantizedMultiplier(acc, mult, shift), -128, 127)``.

    With ``left = clamp(shift, 0, 31)`` and ``right = clamp(-shift, 0, 31)``:
    ``v = saturate_int32(acc << left)``; ``h = SaturatingRoundingDoublingHighMul(v,
    mult)`` (``v * mult / 2**31`` rounded to nearest, ties toward +inf;
    ``INT32_MIN * INT32_MIN -> INT32_MAX``); ``RoundingDivideByPOT(h, right)`` (ties
    away from zero); clamp to int8.

    Golden model: ``models.vector.requant`` (checked against a Python-integer
    transcription of TFLite's reference code).

    Latency: ``stages`` cycles, 0 (combinational: 32-bit saturating shifter, 32x32
    signed multiplier, rounding shifter) or :attr:`PIPELINED` (registers after the
    saturating shift, the product, the doubling high half and the rounding shift).

    Parameters
    ----------
    stages : int
        0 or :attr:`PIPELINED` (default 0).

    Members
    -------
    i_acc, i_mult, i_shift : In(32)
        Two's-complement int32 bits.
    o_result : Out(8)
        int8, two's complement.
    """

    PIPELINED = 4

    def __init__(self, *, stages: int = 0):
        if stages not in (0, self.PIPELINED):
            raise ValueError(f"Requant stages must be 0 or {self.PIPELINED}, got {stages!r}")
        self.stages = stages
        super().__init__({"i_acc": In(32), "i_mult": In(32), "i_shift": In(32),
                          "o_result": Out(8)})

    def elaborate(self, platform):
        m = Module()
        acc = self.i_acc.as_signed()
        mult = self.i_mult.as_signed()
        shift = self.i_shift.as_signed()
        left = Signal(range(32))
        right = Signal(range(32))
        m.d.comb += [
            left.eq(Mux(shift <= 0, 0, Mux(shift >= 31, 31, shift))),
            right.eq(Mux(shift >= 0, 0, Mux(shift <= -31, 31, -shift))),
        ]
        wide = Signal(signed(64))
        m.d.comb += wide.eq(acc << left)
        v = Signal(signed(32))
        m.d.comb += v.eq(Mux(wide > _MAX, _MAX, Mux(wide < _MIN, _MIN, wide)))
        on = self.stages > 0
        f = cut(m, on, "sat", dict(v=v, mult=mult, right=right))
        v, mult, right = f["v"], f["mult"], f["right"]
        ab = Signal(signed(64))
        m.d.comb += ab.eq(v * mult)
        f = cut(m, on, "mul", dict(ab=ab, both_min=(v == _MIN) & (mult == _MIN), right=right))
        ab, right = f["ab"], f["right"]
        num = Signal(signed(66))
        m.d.comb += num.eq(ab + Mux(ab >= 0, 1 << 30, 1 - (1 << 30)))
        # C division by 2**31 truncates toward zero: ceil for negative numerators
        h = Signal(signed(35))
        m.d.comb += h.eq(Mux(num >= 0, num >> 31, (num + ((1 << 31) - 1)) >> 31))
        hs = Signal(signed(32))
        m.d.comb += hs.eq(Mux(f["both_min"], _MAX, h))
        f = cut(m, on, "high", dict(hs=hs, right=right))
        hs, right = f["hs"], f["right"]
        mask = Signal(32)
        m.d.comb += mask.eq((1 << right) - 1)
        rem = Signal(32)
        m.d.comb += rem.eq(hs.as_unsigned() & mask)
        thr = Signal(32)
        m.d.comb += thr.eq((mask >> 1) + (hs < 0))
        shifted = Signal(signed(32))
        m.d.comb += shifted.eq(hs >> right)
        f = cut(m, on, "round", dict(shifted=shifted, up=rem > thr))
        q = Signal(signed(33))
        m.d.comb += q.eq(f["shifted"] + f["up"])
        m.d.comb += self.o_result.eq(Mux(q > 127, 127, Mux(q < -128, -128, q)))
        return m
