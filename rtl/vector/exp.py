"""Table-based ``exp(x)`` for ``x <= 0`` (softmax), bit-exact to the golden model."""
import numpy as np
from amaranth import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from models.fp32 import CANONICAL_NAN_BITS, EXP_BIAS, EXP_BITS, MAN_BITS
from models.vector import EXP_FRAC_BITS, EXP_IDX_BITS, EXP_LUT, EXP_T_MIN, LOG2E_F32
from rtl.fp.f32 import exponent, fraction, is_nan, magnitude, sign
from rtl.fp.fp32_mul import FP32Multiplier
from rtl.lib.pipe import cut, delay

__all__ = ["ExpApprox"]

_LOG2E_BITS = int(LOG2E_F32.view(np.uint32))
_T_MIN_MAG = int(np.float32(-EXP_T_MIN).view(np.uint32))    # bits of |EXP_T_MIN| (126.0)


class ExpApprox(wiring.Component):
    """``exp(x)``, binary32 -> binary32, as ``2**(x log2 e)`` with a 65-entry table.

    ``t = fmul(x, f32(log2 e))`` (x > 0 clamped to 0); ``T = floor(t * 2**16)``;
    ``2**(T / 2**16) = 2**n * 2**(f / 2**16)`` with the fraction from
    ``LUT[idx] + ((LUT[idx+1] - LUT[idx]) * fr >> 10)``. NaN -> canonical NaN,
    ``t < -126`` (``models.vector.EXP_T_MIN``) -> ``+0``; results are always normal or
    ``+0``.

    Golden model: ``models.vector.exp_approx`` (bit-exact; max relative error
    2.5e-5 vs float64 ``exp``, docs/vector_unit.md).

    Latency: ``stages`` cycles, 0 (combinational: one FP32Multiplier, a 24-bit
    shifter, a 6-bit table lookup, an 18x10-bit multiplier and an adder) or
    :attr:`PIPELINED` (the multiplier's 5 stages, then registers after the product
    ``t``, the shift, the table lookup and the interpolation product).

    Parameters
    ----------
    stages : int
        0 or :attr:`PIPELINED` (default 0).

    Members
    -------
    i_a : In(32)
    o_result : Out(32)
    """

    #: ``stages`` -> (multiplier stages, register points).
    _CUTS = {0: (0, ()), 9: (5, ("t", "shift", "lut", "interp"))}
    PIPELINED = 9

    def __init__(self, stages: int = 0):
        if stages not in self._CUTS:
            raise ValueError(f"ExpApprox stages must be one of {sorted(self._CUTS)}, "
                             f"got {stages!r}")
        self.stages = stages
        super().__init__({"i_a": In(32), "o_result": Out(32)})

    def elaborate(self, platform):
        m = Module()
        mul_stages, points = self._CUTS[self.stages]
        a = self.i_a
        pos = ~sign(a) & (magnitude(a) != 0)
        m.submodules.mul = mul = FP32Multiplier(mul_stages)
        m.d.comb += [mul.i_a.eq(Mux(pos, 0, a)), mul.i_b.eq(_LOG2E_BITS)]
        nan = delay(m, is_nan(a), mul_stages, "nan_d")
        f = cut(m, "t" in points, "t", dict(t=mul.o_product, nan=nan))
        t, nan = f["t"], f["nan"]                         # t <= 0 (or -0), never NaN
        zero = sign(t) & (magnitude(t) > _T_MIN_MAG)     # t < -126, incl. -inf
        et = exponent(t)
        sig = Cat(fraction(t), et != 0)
        # |t| * 2**16 = sig * 2**(max(et,1) - 134), a right shift by >= 1 (|t| <= 126)
        e0 = EXP_BIAS + MAN_BITS - EXP_FRAC_BITS        # 134
        sh = Signal(range(26))
        eff = Mux(et == 0, 1, et)
        m.d.comb += sh.eq(Mux(eff <= e0 - 25, 25, e0 - eff))
        u = Signal(24)
        m.d.comb += u.eq(sig >> sh)
        inexact = Signal()
        m.d.comb += inexact.eq((sig & ((Const(1, 26) << sh) - 1)[:24]) != 0)
        f = cut(m, "shift" in points, "shift", dict(u=u, inexact=inexact, nan=nan, zero=zero))
        u, inexact, nan, zero = f["u"], f["inexact"], f["nan"], f["zero"]
        v = Signal(24)                                    # ceil(|t| * 2**16)
        m.d.comb += v.eq(u + inexact)
        big_t = Signal(24)                                # T = -v, two's complement
        m.d.comb += big_t.eq(-v)
        n = big_t[EXP_FRAC_BITS:].as_signed()            # floor(T / 2**16), -126..0
        frac_t = big_t[:EXP_FRAC_BITS]
        sh_f = EXP_FRAC_BITS - EXP_IDX_BITS
        idx = frac_t[sh_f:]
        fr = frac_t[:sh_f]
        lo_tab = Array(Const(int(x), 25) for x in EXP_LUT[:-1])
        hi_tab = Array(Const(int(x), 25) for x in EXP_LUT[1:])
        lo = Signal(25)
        hi = Signal(25)
        m.d.comb += [lo.eq(lo_tab[idx]), hi.eq(hi_tab[idx])]
        field = Signal(signed(10))
        m.d.comb += field.eq(n + EXP_BIAS)
        f = cut(m, "lut" in points, "lut", dict(lo=lo, d=(hi - lo)[:20], fr=fr, field=field,
                                                 nan=nan, zero=zero))
        prod = Signal(30)
        m.d.comb += prod.eq(f["d"] * f["fr"])
        f = cut(m, "interp" in points, "interp", dict(lo=f["lo"], prod=prod,
                                                       field=f["field"], nan=f["nan"],
                                                       zero=f["zero"]))
        lo, field, nan, zero = f["lo"], f["field"], f["nan"], f["zero"]
        p = Signal(25)
        m.d.comb += p.eq(lo + (f["prod"] >> sh_f))
        with m.If(nan):
            m.d.comb += self.o_result.eq(CANONICAL_NAN_BITS)
        with m.Elif(zero):
            m.d.comb += self.o_result.eq(0)
        with m.Else():
            m.d.comb += self.o_result.eq(Cat(p[:MAN_BITS], field[:EXP_BITS], Const(0, 1)))
        return m
