"""IEEE binary32 multiplier: round to nearest even, subnormals, canonical NaN."""
from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from models.fp32 import CANONICAL_NAN_BITS, POS_INF_BITS
from rtl.fp.f32 import exponent, fraction, inf, is_inf, is_nan, magnitude, sign, zero
from rtl.lib.pipe import cut_at

__all__ = ["FP32Multiplier"]


class FP32Multiplier(wiring.Component):
    """IEEE 754 binary32 multiplication, ``o_product = i_a * i_b``.

    * Rounding: to nearest, ties to even, once, from the exact 48-bit product.
      Subnormal inputs and outputs are exact IEEE (no flush to zero); a product
      below half the smallest subnormal rounds to a signed zero.
    * Zeros and signs: the sign is always ``sign_a ^ sign_b`` (``-0 * 3 = -0``).
    * Infinities: ``inf * nonzero = ±inf``; overflow rounds to ``±inf``.
    * NaN: a NaN input, or ``inf * 0``, gives the canonical ``0x7FC00000``.

    Golden model: ``models.vector.fmul`` (numpy float32 multiply, NaN canonicalised),
    bit-exact.

    Latency: ``stages`` cycles (0: combinational). The datapath is 24x24 multiplier,
    48-bit leading-one detector and normalising shift, denormalising shift, round +
    pack; ``stages`` = 1 registers after the multiplier, 2 after the multiplier and
    after the denormalising shift, 3 after each of the three; 4 also splits the
    multiplier (its four 18/6-bit partial products registered, their sum in the next
    stage: DSP-sized pieces), 5 also registers the operands' fields first. The pipeline
    advances every cycle (no enable).

    Parameters
    ----------
    stages : int
        Pipeline registers, 0 to 5 (default 0).

    Members
    -------
    i_a, i_b : In(32)
        binary32 operand bits.
    o_product : Out(32)
        binary32 bits of the rounded product.
    """

    #: Register points per ``stages`` value.
    _CUTS = {0: (), 1: ("product",), 2: ("product", "shift"),
             3: ("product", "norm", "shift"), 4: ("partial", "product", "norm", "shift"),
             5: ("in", "partial", "product", "norm", "shift")}

    def __init__(self, stages: int = 0):
        if stages not in self._CUTS:
            raise ValueError(f"FP32Multiplier stages must be 0..5, got {stages!r}")
        self._stages = stages
        super().__init__({"i_a": In(32), "i_b": In(32), "o_product": Out(32)})

    @property
    def stages(self) -> int:
        return self._stages

    def _cut(self, m: Module, point: str, sigs: dict) -> dict:
        """``sigs`` registered when ``point`` is one of this multiplier's cuts, else as is."""
        return cut_at(m, self._CUTS[self._stages], point, sigs)

    def elaborate(self, platform):
        m = Module()
        a, b = self.i_a, self.i_b
        ea, eb = exponent(a), exponent(b)
        nan_a, nan_b = is_nan(a), is_nan(b)
        inf_a, inf_b = is_inf(a), is_inf(b)
        sgn = sign(a) ^ sign(b)
        nan = nan_a | nan_b | (inf_a & (magnitude(b) == 0)) | ((magnitude(a) == 0) & inf_b)
        special_inf = inf_a | inf_b
        special_zero = (magnitude(a) == 0) | (magnitude(b) == 0)

        # value = P * 2**(ea' + eb' - 300), ea' = max(ea, 1) (subnormals: no hidden bit)
        ma = Cat(fraction(a), ea != 0)
        mb = Cat(fraction(b), eb != 0)
        esum = Signal(range(2, 511))
        m.d.comb += esum.eq(Mux(ea == 0, 1, ea) + Mux(eb == 0, 1, eb))
        f = self._cut(m, "in", dict(ma=ma, mb=mb, esum=esum, sgn=sgn, nan=nan,
                                     inf=special_inf, zero=special_zero))
        ma, mb = f["ma"], f["mb"]
        p = Signal(48)
        if "partial" in self._CUTS[self._stages]:
            # P = ma * mb from 18/6-bit pieces (each fits one 18x18 DSP multiplier)
            pieces = dict(ll=ma[:18] * mb[:18], lh=ma[:18] * mb[18:],
                          hl=ma[18:] * mb[:18], hh=ma[18:] * mb[18:])
            f = self._cut(m, "partial", dict(**pieces, esum=f["esum"], sgn=f["sgn"],
                                              nan=f["nan"], inf=f["inf"], zero=f["zero"]))
            m.d.comb += p.eq(f["ll"] + ((f["lh"] + f["hl"]) << 18) + (f["hh"] << 36))
        else:
            m.d.comb += p.eq(ma * mb)
        f = self._cut(m, "product", dict(p=p, esum=f["esum"], sgn=f["sgn"], nan=f["nan"],
                                          inf=f["inf"], zero=f["zero"]))
        p, esum = f["p"], f["esum"]

        # Leading one of P at bit k: normalise it to bit 47.
        lz = Signal(range(48))
        for i in range(48):                       # higher bits take priority
            with m.If(p[i]):
                m.d.comb += lz.eq(47 - i)
        pn = Signal(48)
        m.d.comb += pn.eq((p << lz)[:48])
        # Biased exponent of the normalised value 1.f * 2**(k + ea' + eb' - 300):
        # k + ea' + eb' - 173, k = 47 - lz.
        e = Signal(signed(11))
        m.d.comb += e.eq(esum - lz - 126)
        f = self._cut(m, "norm", dict(pn=pn, e=e, sgn=f["sgn"], nan=f["nan"], inf=f["inf"],
                                       zero=f["zero"]))
        pn, e = f["pn"], f["e"]
        # Below the normal range, shift right by 1 - e more (exponent field stays 1
        # with no hidden bit, i.e. a subnormal), every lost bit into the sticky bit.
        rshift = Signal(range(51))
        m.d.comb += rshift.eq(Mux(e >= 1, 0, Mux(e < -48, 50, 1 - e)))
        wide = Signal(96)
        m.d.comb += wide.eq(Cat(Const(0, 48), pn) >> rshift)
        sticky = Signal()
        m.d.comb += sticky.eq(wide[:71] != 0)
        eff_exp = Signal(10)                     # exponent field of bit 23 of sig, >= 1
        m.d.comb += eff_exp.eq(Mux(e >= 1, e, 1))
        f = self._cut(m, "shift", dict(sig=wide[72:96], guard=wide[71], sticky=sticky,
                                        eff_exp=eff_exp, sgn=f["sgn"], nan=f["nan"],
                                        inf=f["inf"], zero=f["zero"]))
        sig, guard, sticky, eff_exp = f["sig"], f["guard"], f["sticky"], f["eff_exp"]
        sgn = f["sgn"]
        sig_r = Signal(25)
        m.d.comb += sig_r.eq(sig + (guard & (sticky | sig[0])))
        packed = Signal(34)
        m.d.comb += packed.eq(((eff_exp - 1) << 23) + sig_r)

        with m.If(f["nan"]):
            m.d.comb += self.o_product.eq(CANONICAL_NAN_BITS)
        with m.Elif(f["inf"] | (packed >= POS_INF_BITS)):
            m.d.comb += self.o_product.eq(inf(sgn))
        with m.Elif(f["zero"]):
            m.d.comb += self.o_product.eq(zero(sgn))
        with m.Else():
            m.d.comb += self.o_product.eq(Cat(magnitude(packed), sgn))
        return m
