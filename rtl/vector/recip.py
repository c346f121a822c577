"""Table-based reciprocal ``1/x`` (softmax normalisation, GELU), bit-exact to the model."""
from amaranth import Array, Cat, Const, Module, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from models.fp32 import CANONICAL_NAN_BITS, EXP_BITS, EXP_MAX, MAN_BITS
from models.vector import RECIP_IDX_BITS, RECIP_LUT
from rtl.fp.f32 import exponent, fraction, inf, sign, zero
from rtl.lib.pipe import cut

__all__ = ["RecipApprox"]


class RecipApprox(wiring.Component):
    """``1/x``, binary32 -> binary32, from a 65-entry table of ``2**24 / (1 + k/64)``
    and linear interpolation on the 17 mantissa bits below the index.

    NaN -> canonical NaN; ``±0`` and subnormals -> ``±inf``; ``±inf -> ±0``; results
    below the normal range (``|x| >= 2**126``) flush to ``±0``.

    Golden model: ``models.vector.recip_approx`` (bit-exact; max relative error
    6.5e-5 vs float64, docs/vector_unit.md).

    Latency: ``stages`` cycles, 0 (combinational: 6-bit table lookup, 20x17-bit
    multiplier, subtractor) or :attr:`PIPELINED` (registers after the lookup, the
    product and the subtraction).

    Parameters
    ----------
    stages : int
        0 or :attr:`PIPELINED` (default 0).

    Members
    -------
    i_a : In(32)
    o_result : Out(32)
    """

    _CUTS = {0: (), 3: ("lut", "interp", "sub")}
    PIPELINED = 3

    def __init__(self, stages: int = 0):
        if stages not in self._CUTS:
            raise ValueError(f"RecipApprox stages must be one of {sorted(self._CUTS)}, "
                             f"got {stages!r}")
        self.stages = stages
        super().__init__({"i_a": In(32), "o_result": Out(32)})

    def elaborate(self, platform):
        m = Module()
        a = self.i_a
        e = exponent(a)
        mt = fraction(a)
        sh = MAN_BITS - RECIP_IDX_BITS
        idx = mt[sh:]
        fr = mt[:sh]
        hi_tab = Array(Const(int(x), 25) for x in RECIP_LUT[:-1])
        lo_tab = Array(Const(int(x), 25) for x in RECIP_LUT[1:])
        hi = Signal(25)
        lo = Signal(25)
        m.d.comb += [hi.eq(hi_tab[idx]), lo.eq(lo_tab[idx])]
        points = self._CUTS[self.stages]
        flags = dict(nan=(e == EXP_MAX) & (mt != 0), inf_in=e == EXP_MAX, zero_in=e == 0,
                     e=e, s=sign(a))
        f = cut(m, "lut" in points, "lut", dict(hi=hi, d=(hi - lo)[:20], fr=fr, **flags))
        prod = Signal(37)
        m.d.comb += prod.eq(f["d"] * f["fr"])
        f = cut(m, "interp" in points, "interp",
                dict(hi=f["hi"], prod=prod, **{k: f[k] for k in flags}))
        r = Signal(25)
        m.d.comb += r.eq(f["hi"] - (f["prod"] >> sh))
        f = cut(m, "sub" in points, "sub", dict(r=r, **{k: f[k] for k in flags}))
        r, e, s = f["r"], f["e"], f["s"]
        exact = r == (1 << 24)
        ex = Signal(signed(10))
        m.d.comb += ex.eq(253 + exact - e)          # 254 - e when r == 2**24
        with m.If(f["nan"]):
            m.d.comb += self.o_result.eq(CANONICAL_NAN_BITS)
        with m.Elif(f["inf_in"]):
            m.d.comb += self.o_result.eq(zero(s))
        with m.Elif(f["zero_in"]):
            m.d.comb += self.o_result.eq(inf(s))
        with m.Elif(ex <= 0):
            m.d.comb += self.o_result.eq(zero(s))
        with m.Else():
            m.d.comb += self.o_result.eq(Cat(r[:MAN_BITS], ex[:EXP_BITS], s))
        return m
