"""Format converters of the vector unit: int -> binary32, binary32 -> INT8 / BF16,
FP8 code -> binary32. Combinational (latency 0) unless a ``stages`` parameter says
otherwise."""
from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from models.fp8 import E4M3, E5M2, FMT_E5M2
from models.fp32 import CANONICAL_NAN_BITS, EXP_BIAS, EXP_BITS, MAN_BITS, POS_INF_BITS
from models.vector import BF16_INF_BITS, BF16_MAX_BITS, BF16_NAN_BITS
from rtl.fp.f32 import exponent, fraction, inf, is_nan, magnitude, sign, zero
from rtl.lib.pipe import cut

__all__ = ["Int2F32", "F32ToInt8", "F32ToBF16", "FP8Decoder", "leading_one"]


def leading_one(m: Module, x, name: str) -> Signal:
    """Index of the highest set bit of ``x`` (0 when ``x == 0``)."""
    k = Signal(range(max(len(x), 2)), name=name)
    for i in range(len(x)):                 # later (higher) bits take priority
        with m.If(x[i]):
            m.d.comb += k.eq(i)
    return k


class Int2F32(wiring.Component):
    """Two's-complement integer of ``width`` bits -> binary32, round to nearest even.

    Golden model: ``models.vector.i2f`` (numpy's int32 -> float32 cast) for width 32;
    exact (no rounding) for ``width <= 25``.

    Latency: ``stages`` cycles: 0 (combinational), 1 (a register after the
    normalising shift) or 2 (after the magnitude and after the shift).

    Parameters
    ----------
    width : int
        Integer width, 2 to 32.
    stages : int
        0, 1 or 2 (default 0).

    Members
    -------
    i_a : In(width)
        Integer bits (two's complement).
    o_result : Out(32)
    """

    _CUTS = {0: (), 1: ("norm",), 2: ("mag", "norm")}

    def __init__(self, width: int = 32, *, stages: int = 0):
        if not 2 <= width <= 32:
            raise ValueError(f"Int2F32 width must be in [2, 32], got {width}")
        if stages not in self._CUTS:
            raise ValueError(f"Int2F32 stages must be 0, 1 or 2, got {stages!r}")
        self.width = width
        self.stages = stages
        super().__init__({"i_a": In(width), "o_result": Out(32)})

    def elaborate(self, platform):
        m = Module()
        w = self.width
        a = self.i_a
        neg = a[w - 1]
        mag = Signal(w)
        m.d.comb += mag.eq(Mux(neg, -a, a))      # -(-2**(w-1)) = 2**(w-1) fits unsigned
        points = self._CUTS[self.stages]
        f = cut(m, "mag" in points, "mag", dict(mag=mag, neg=neg))
        mag, neg = f["mag"], f["neg"]
        k = leading_one(m, mag, "lead")
        lz = Signal(range(w))
        m.d.comb += lz.eq(w - 1 - k)
        norm = Signal(w)                          # leading one at bit w-1
        m.d.comb += norm.eq((mag << lz)[:w])
        f = cut(m, "norm" in points, "norm", dict(norm=norm, k=k, neg=neg, zero=mag == 0))
        norm, k, neg, is_zero = f["norm"], f["k"], f["neg"], f["zero"]
        if w - 1 > 23:
            sig = norm[w - 24:]
            guard = norm[w - 25]
            sticky = norm[:w - 25] != 0 if w > 25 else Const(0)
            sig_r = Signal(25)
            m.d.comb += sig_r.eq(sig + (guard & (sticky | sig[0])))
        else:
            sig_r = Cat(Const(0, 24 - w), norm)
        packed = Signal(32)
        # exponent field 127 + k; a rounding carry into bit 24 adds one more
        m.d.comb += packed.eq(((EXP_BIAS - 1 + k) << MAN_BITS) + sig_r)
        m.d.comb += self.o_result.eq(Mux(is_zero, 0, Cat(magnitude(packed), neg)))
        return m


class F32ToInt8(wiring.Component):
    """binary32 -> int8: round half to even, saturate to [-128, 127], NaN -> 0.

    Golden model: ``models.vector.to_int8``.

    Latency: ``stages`` cycles, 0 or 1 (a register after the shift).

    Parameters
    ----------
    stages : int
        0 or 1 (default 0).

    Members
    -------
    i_a : In(32)
    o_result : Out(8)
        Two's complement.
    """

    def __init__(self, *, stages: int = 0):
        if stages not in (0, 1):
            raise ValueError(f"F32ToInt8 stages must be 0 or 1, got {stages!r}")
        self.stages = stages
        super().__init__({"i_a": In(32), "o_result": Out(8)})

    def elaborate(self, platform):
        m = Module()
        a = self.i_a
        e = exponent(a)
        nan = is_nan(a)
        sig = Cat(fraction(a), 1)
        # |a| * 2**24 = sig << (e - 126) for 126 <= e <= 134 (|a| in [0.5, 512))
        fx = Signal(32)
        m.d.comb += fx.eq(sig << (e - 126)[:4])
        f = cut(m, self.stages == 1, "shift", dict(fx=fx, e=e, nan=nan, s=sign(a)))
        fx, e, nan, sgn = f["fx"], f["e"], f["nan"], f["s"]
        q = fx[24:32]
        guard = fx[23]
        sticky = fx[:23] != 0
        q_r = Signal(9)
        m.d.comb += q_r.eq(q + (guard & (sticky | q[0])))
        mag = Signal(9)                       # rounded |a|, saturated to 128
        m.d.comb += mag.eq(Mux(e >= 135, 128, Mux(e <= 125, 0, Mux(q_r > 128, 128, q_r))))
        res = Signal(8)
        m.d.comb += res.eq(Mux(sgn, Mux(mag == 0, 0, -mag), Mux(mag > 127, 127, mag)))
        m.d.comb += self.o_result.eq(Mux(nan, 0, res))
        return m


class F32ToBF16(wiring.Component):
    """binary32 -> bfloat16: RNE, saturating to ``±0x7F7F`` (``±inf`` too), NaN -> 0x7FC0.

    Golden model: ``models.vector.to_bf16``.

    Latency: 0 cycles.

    Members
    -------
    i_a : In(32)
    o_result : Out(16)
    """

    def __init__(self):
        super().__init__({"i_a": In(32), "o_result": Out(16)})

    def elaborate(self, platform):
        m = Module()
        a = self.i_a
        mag = magnitude(a)
        r = Signal(32)
        m.d.comb += r.eq((mag + 0x7FFF + mag[16]) >> 16)
        with m.If(mag > POS_INF_BITS):
            m.d.comb += self.o_result.eq(BF16_NAN_BITS)
        with m.Elif(r >= BF16_INF_BITS):
            m.d.comb += self.o_result.eq(Cat(Const(BF16_MAX_BITS, 15), sign(a)))
        with m.Else():
            m.d.comb += self.o_result.eq(Cat(r[:15], sign(a)))
        return m


class FP8Decoder(wiring.Component):
    """FP8 code -> exact binary32 (E4M3 or E5M2 at run time); NaN -> ``0x7FC00000``.

    Golden model: ``models.fp8.decode``.

    Latency: 0 cycles.

    Members
    -------
    i_code : In(8)
    i_fmt : In(1)
        0 = E4M3, 1 = E5M2 (``models.fp8.FMT_*``).
    o_result : Out(32)
    """

    def __init__(self):
        super().__init__({"i_code": In(8), "i_fmt": In(1), "o_result": Out(32)})

    @staticmethod
    def _decode(m, code, f, name):
        e = code[f.man_bits:7]
        man = code[:f.man_bits]
        e_max = (1 << f.exp_bits) - 1
        sig = Cat(man, e != 0)                 # value = sig * 2**(max(e,1) - bias - man)
        k = leading_one(m, sig, f"{name}_lead")
        field = Signal(9, name=f"{name}_field")
        m.d.comb += field.eq(k + Mux(e == 0, 1, e) + (EXP_BIAS - f.bias - f.man_bits))
        lz = Signal(range(MAN_BITS + 1), name=f"{name}_lz")
        m.d.comb += lz.eq(MAN_BITS - k)
        frac = Signal(MAN_BITS, name=f"{name}_frac")
        m.d.comb += frac.eq((sig << lz)[:MAN_BITS])
        out = Signal(32, name=f"{name}_out")
        if f.has_inf:
            nan = (e == e_max) & (man != 0)
            is_inf = (e == e_max) & (man == 0)
        else:
            nan = code[:7] == f.nan_code
            is_inf = None
        with m.If(nan):
            m.d.comb += out.eq(CANONICAL_NAN_BITS)
        if is_inf is not None:
            with m.Elif(is_inf):
                m.d.comb += out.eq(inf(code[7]))
        with m.Elif(code[:7] == 0):
            m.d.comb += out.eq(zero(code[7]))
        with m.Else():
            m.d.comb += out.eq(Cat(frac, field[:EXP_BITS], code[7]))
        return out

    def elaborate(self, platform):
        m = Module()
        d4 = self._decode(m, self.i_code, E4M3, "e4m3")
        d5 = self._decode(m, self.i_code, E5M2, "e5m2")
        m.d.comb += self.o_result.eq(Mux(self.i_fmt == FMT_E5M2, d5, d4))
        return m
