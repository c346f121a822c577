"""binary32 -> OCP FP8 encoder (RNE, saturating) with a run-time format select."""
from amaranth import Cat, Const, Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from models.fp8 import E4M3, E5M2, FMT_E5M2
from models.fp32 import EXP_BIAS, MAN_BITS, POS_INF_BITS
from rtl.fp.f32 import exponent, fraction, magnitude, sign

__all__ = ["FP8Encoder"]


class FP8Encoder(wiring.Component):
    """Round a binary32 value to an FP8 code: nearest, ties to even, saturating.

    One rounding directly from binary32. A value that rounds past the largest finite
    value, and ``±inf``, give ``±max`` (SATFINITE); values that round to zero keep
    their sign; NaN gives the canonical code (``0x7F`` E4M3, ``0x7E`` E5M2).

    Golden model: ``models.fp8.encode(x, fmt)`` (saturating), bit-exact; the
    arithmetic below is that function's, step by step.

    Latency: ``stages`` cycles: 0 (combinational: two encoders, one per format, and a
    mux) or 1 (a register after each encoder's significand shift).

    Parameters
    ----------
    stages : int
        0 or 1 (default 0).

    Members
    -------
    i_a : In(32)
        binary32 bits.
    i_fmt : In(1)
        ``models.fp8.FMT_E4M3`` (0) or ``FMT_E5M2`` (1).
    o_code : Out(8)
    """

    def __init__(self, *, stages: int = 0):
        if stages not in (0, 1):
            raise ValueError(f"FP8Encoder stages must be 0 or 1, got {stages!r}")
        self.stages = stages
        super().__init__({"i_a": In(32), "i_fmt": In(1), "o_code": Out(8)})

    def _encode(self, m, a, f, name):
        mag = magnitude(a)
        is_nan = mag > POS_INF_BITS
        is_inf = mag == POS_INF_BITS
        e32 = exponent(a)
        sig = Cat(fraction(a), e32 != 0)
        unbiased = Signal(signed(10), name=f"{name}_unb")      # max(e32, 1) - 127
        m.d.comb += unbiased.eq(Mux(e32 == 0, 1, e32) - EXP_BIAS)
        # shift = 23 - man_bits + max(0, 1 - bias - unbiased); beyond 26 all is sticky
        extra = Signal(signed(11), name=f"{name}_extra")
        m.d.comb += extra.eq(1 - f.bias - unbiased)
        shift = Signal(range(27), name=f"{name}_shift")
        base = MAN_BITS - f.man_bits
        m.d.comb += shift.eq(Mux(extra <= 0, base, Mux(extra >= 26 - base, 26, base + extra)))
        q = Signal(25, name=f"{name}_q")
        m.d.comb += q.eq(sig >> shift)
        rem = Signal(24, name=f"{name}_rem")
        m.d.comb += rem.eq(sig & ((Const(1, 27) << shift) - 1)[:24])
        half = Signal(26, name=f"{name}_half")
        m.d.comb += half.eq((Const(1, 27) << shift)[1:])
        if self.stages:                     # register point: after the shift
            regs = {}
            for k, v in dict(q=q, rem=rem, half=half, unbiased=unbiased, is_nan=is_nan,
                             is_inf=is_inf, sign=sign(a)).items():
                v = Value.cast(v)
                r = Signal(v.shape(), name=f"{name}_{k}_q")
                m.d.sync += r.eq(v)
                regs[k] = r
            q, rem, half, unbiased = regs["q"], regs["rem"], regs["half"], regs["unbiased"]
            is_nan, is_inf, sgn = regs["is_nan"], regs["is_inf"], regs["sign"]
        else:
            sgn = sign(a)
        q_r = Signal(26, name=f"{name}_qr")
        m.d.comb += q_r.eq(q + ((rem > half) | ((rem == half) & q[0])))
        ebias = Signal(signed(11), name=f"{name}_ebias")
        m.d.comb += ebias.eq(unbiased + f.bias)
        code = Signal(32, name=f"{name}_code")
        m.d.comb += code.eq(q_r + (Mux(ebias >= 1, ebias - 1, 0)[:10] << f.man_bits))
        out = Signal(8, name=f"{name}_out")
        with m.If(is_nan):
            m.d.comb += out.eq(f.nan_code)
        with m.Elif(is_inf | (code > f.max_code)):
            m.d.comb += out.eq(Cat(Const(f.max_code, 7), sgn))
        with m.Else():
            m.d.comb += out.eq(Cat(code[:7], sgn))
        return out

    def elaborate(self, platform):
        m = Module()
        e4 = self._encode(m, self.i_a, E4M3, "e4m3")
        e5 = self._encode(m, self.i_a, E5M2, "e5m2")
        fmt = self.i_fmt
        if self.stages:
            fmt = Signal.like(self.i_fmt, name="fmt_q")
            m.d.sync += fmt.eq(self.i_fmt)
        m.d.comb += self.o_code.eq(Mux(fmt == FMT_E5M2, e5, e4))
        return m
