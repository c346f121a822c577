"""IEEE binary32 adder: round to nearest even, subnormals, canonical NaN."""
from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from models.fp32 import CANONICAL_NAN_BITS, POS_INF_BITS
from rtl.fp.f32 import exponent, fraction, inf, is_inf, is_nan, magnitude, sign, zero
from rtl.lib.pipe import cut_at

__all__ = ["FP32Adder"]

_GRS = 3          # guard, round and sticky bits below the 24-bit significand
_W = 24 + _GRS    # aligned significand width (leading one at bit 26)


class FP32Adder(wiring.Component):
    """IEEE 754 binary32 addition, ``o_result = i_a + i_b``.

    * Rounding: to nearest, ties to even. Subnormal inputs and outputs are exact
      IEEE (no flush to zero).
    * Zeros: an exact zero sum of operands with different signs is ``+0``
      (``x + (-x) = +0``); ``-0 + -0 = -0``; ``x + ±0 = x``.
    * Infinities: ``inf + finite = inf``, ``inf + inf = inf``, ``inf + -inf = NaN``;
      a finite sum that rounds past the largest finite value gives ``±inf``.
    * NaN: any NaN input, or ``inf + -inf``, gives the canonical ``0x7FC00000``.

    Golden model: ``models.fp32.fp32_add_bits`` (numpy float32 addition, NaN
    canonicalised), bit-exact.

    Latency: ``stages`` cycles (0: combinational). The datapath is swap + align shift,
    28-bit add, leading-zero count + normalise shift, round + pack; ``stages`` = 1
    registers after the add, 2 after the align shift and after the normalise shift,
    3 at all three points, 4 also between the swap (magnitude compare, exponent
    difference) and the align shift. The pipeline advances every cycle (no enable).

    Parameters
    ----------
    stages : int
        Pipeline registers, 0 to 4 (default 0).

    Members
    -------
    i_a, i_b : In(32)
        binary32 operand bits.
    o_result : Out(32)
        binary32 bits of the rounded sum.
    """

    #: Register points per ``stages`` value.
    _CUTS = {0: (), 1: ("add",), 2: ("align", "norm"), 3: ("align", "add", "norm"),
             4: ("swap", "align", "add", "norm")}

    def __init__(self, stages: int = 0):
        if stages not in self._CUTS:
            raise ValueError(f"FP32Adder stages must be 0..4, got {stages!r}")
        self._stages = stages
        super().__init__({"i_a": In(32), "i_b": In(32), "o_result": Out(32)})

    @property
    def stages(self) -> int:
        return self._stages

    def _cut(self, m: Module, point: str, sigs: dict) -> dict:
        """``sigs`` registered when ``point`` is one of this adder's cuts, else as is."""
        return cut_at(m, self._CUTS[self._stages], point, sigs)

    def elaborate(self, platform):
        m = Module()
        a, b = self.i_a, self.i_b
        sa, nan_a, inf_a = sign(a), is_nan(a), is_inf(a)
        sb, nan_b, inf_b = sign(b), is_nan(b), is_inf(b)

        # Order by magnitude (the 31 low bits compare like the values): |x| >= |y|.
        swap = Signal()
        x = Signal(32)
        y = Signal(32)
        m.d.comb += [swap.eq(magnitude(b) > magnitude(a)), x.eq(Mux(swap, b, a)),
                     y.eq(Mux(swap, a, b))]
        sx, sy = sign(x), sign(y)
        # Subnormals: exponent 1 and no hidden bit.
        ex = Signal(8)
        ey = Signal(8)
        m.d.comb += [ex.eq(Mux(exponent(x) == 0, 1, exponent(x))),
                     ey.eq(Mux(exponent(y) == 0, 1, exponent(y)))]
        mx = Cat(fraction(x), exponent(x) != 0)   # 24-bit significands
        my = Cat(fraction(y), exponent(y) != 0)

        # Align y: shift right by d; every bit shifted out ORs into the sticky LSB.
        d = Signal(8)
        m.d.comb += d.eq(ex - ey)
        d_sat = Signal(range(_W + 1))
        m.d.comb += d_sat.eq(Mux(d > _W, _W, d))
        nan = Signal()
        any_inf = Signal()
        m.d.comb += [nan.eq(nan_a | nan_b | (inf_a & inf_b & (sa ^ sb))),
                     any_inf.eq(inf_a | inf_b)]
        p = self._cut(m, "swap", dict(mx=mx, my=my, ex=ex, sx=sx, sy=sy, d_sat=d_sat,
                                       nan=nan, any_inf=any_inf))
        mx, my, ex, sx, sy, d_sat = p["mx"], p["my"], p["ex"], p["sx"], p["sy"], p["d_sat"]
        nan, any_inf = p["nan"], p["any_inf"]
        wide = Signal(2 * _W)
        m.d.comb += wide.eq(Cat(Const(0, _W + _GRS), my) >> d_sat)
        ay = Signal(_W)
        m.d.comb += ay.eq(Cat(wide[_W] | (wide[:_W] != 0), wide[_W + 1:]))
        ax = Cat(Const(0, _GRS), mx)
        p = self._cut(m, "align", dict(ax=ax, ay=ay, ex=ex, sx=sx, sy=sy, nan=nan,
                                        any_inf=any_inf))
        ax, ay, ex, sx, sy = p["ax"], p["ay"], p["ex"], p["sx"], p["sy"]

        # |x| >= |y| makes the difference non-negative.
        subtract = sx ^ sy
        s = Signal(_W + 1)
        m.d.comb += s.eq(Mux(subtract, ax - ay, ax + ay))
        p = self._cut(m, "add", dict(s=s, ex=ex, sx=sx, sy=sy, nan=p["nan"],
                                      any_inf=p["any_inf"]))
        s, ex, sx, sy = p["s"], p["ex"], p["sx"], p["sy"]

        # Normalise: leading one to bit _W-1, or as far left as exponent 1 allows.
        lz = Signal(range(_W + 1))
        m.d.comb += lz.eq(_W)
        for i in range(_W):                       # higher bits take priority
            with m.If(s[i]):
                m.d.comb += lz.eq(_W - 1 - i)
        lshift = Signal(range(_W + 1))
        m.d.comb += lshift.eq(Mux(lz < ex, lz, ex - 1))
        norm = Signal(_W)
        exp = Signal(9)                           # exponent of bit _W-1 after normalising
        with m.If(s[_W]):
            # Carry out: one right shift, the lost bit joins the sticky bit.
            m.d.comb += [norm.eq(Cat(s[1] | s[0], s[2:])), exp.eq(ex + 1)]
        with m.Else():
            # A shift of 2 or more needs d <= 1, where the sum is exact; a shift of 1
            # moves the sticky bit to the round position, which still rounds right.
            m.d.comb += [norm.eq((s[:_W] << lshift)[:_W]), exp.eq(ex - lshift)]
        is_zero = Signal()
        m.d.comb += is_zero.eq(s == 0)
        p = self._cut(m, "norm", dict(norm=norm, exp=exp, sx=sx, sy=sy, zero=is_zero,
                                       nan=p["nan"], any_inf=p["any_inf"]))
        norm, exp, sx, sy = p["norm"], p["exp"], p["sx"], p["sy"]

        # Round to nearest even on the 24-bit significand.
        sig = norm[_GRS:]
        guard = norm[_GRS - 1]
        rest = norm[:_GRS - 1] != 0
        sig_r = Signal(25)
        m.d.comb += sig_r.eq(sig + (guard & (rest | sig[0])))
        # (exp - 1) << 23 plus the significand: a hidden bit adds 1 to the exponent
        # field (a subnormal has none: field 0), a rounding carry to 2**24 adds 2.
        packed = Signal(33)
        m.d.comb += packed.eq(((exp - 1) << 23) + sig_r)

        with m.If(p["nan"]):
            m.d.comb += self.o_result.eq(CANONICAL_NAN_BITS)
        with m.Elif(p["any_inf"]):
            m.d.comb += self.o_result.eq(inf(sx))
        with m.Elif(p["zero"]):
            # Exact zero: -0 only when both operands are -0 (RNE rule).
            m.d.comb += self.o_result.eq(zero(sx & sy))
        with m.Elif(packed >= POS_INF_BITS):
            m.d.comb += self.o_result.eq(inf(sx))
        with m.Else():
            m.d.comb += self.o_result.eq(Cat(magnitude(packed), sx))
        return m
