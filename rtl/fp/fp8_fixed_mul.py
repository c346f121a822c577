"""FP8 x FP8 -> exact fixed-point product (the systolic array's FP8 multiplier)."""
from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from models.fp8 import E4M3, E5M2, FMT_E4M3, FMT_E5M2, OPERAND_FRAC_BITS, PRODUCT_MAG_BITS

__all__ = ["FP8FixedMultiplier"]

# An operand is sig * 2**(shift - OPERAND_FRAC_BITS) with a 4-bit significand (E5M2's
# has 3 bits) and shift = max(e, 1) - bias - man_bits + OPERAND_FRAC_BITS >= 0.
_SHIFT_MAX = max((1 << f.exp_bits) - 1 - f.bias - f.man_bits + OPERAND_FRAC_BITS
                 for f in (E4M3, E5M2))


class FP8FixedMultiplier(wiring.Component):
    """Exact product of two OCP FP8 codes as an unsigned fixed-point magnitude and flags.

    Each operand is E4M3 (OCP E4M3FN) or E5M2, chosen at run time by ``i_fmt_a`` /
    ``i_fmt_b``. The product is ``(-1)**o_neg * o_mag * 2**-PRODUCT_FRAC_BITS`` exactly
    (``models.fp8``: 32 fraction bits, ``PRODUCT_MAG_BITS`` = 64 magnitude bits cover
    every format pair): a 4x4-bit significand product shifted left by the sum of the two
    operands' exponent offsets (0..58).

    Special values: ``o_nan`` for a NaN operand or ``inf * 0`` (either order); ``o_inf``
    for ``inf`` times a nonzero value; ``o_mag`` is 0 for both. ``o_neg`` is
    ``sign_a ^ sign_b`` (also for zeros and infinities).

    Golden model: ``models.fp8.fp8_product_fixed`` (bit-exact).

    Latency: 0 cycles (combinational). Resources: a 4x4-bit multiplier, a 5-bit
    exponent-offset adder, an 8-bit-in / 64-bit-out left shifter.

    Members
    -------
    i_a, i_b : In(8)
        FP8 codes.
    i_fmt_a, i_fmt_b : In(1)
        Format of ``i_a`` / ``i_b``: ``models.fp8.FMT_E4M3`` (0) or ``FMT_E5M2`` (1).
    o_mag : Out(PRODUCT_MAG_BITS)
        ``|a * b| * 2**PRODUCT_FRAC_BITS`` (0 for NaN and infinite products).
    o_neg, o_nan, o_inf : Out(1)
        Sign of the product, NaN product, infinite product.
    """

    def __init__(self):
        super().__init__({
            "i_a": In(8), "i_fmt_a": In(1),
            "i_b": In(8), "i_fmt_b": In(1),
            "o_mag": Out(PRODUCT_MAG_BITS),
            "o_neg": Out(1), "o_nan": Out(1), "o_inf": Out(1),
        })

    @staticmethod
    def _unpack(m, code, fmt, name):
        """Return (sign, sig[4], shift[5], is_nan, is_inf, is_zero) signals."""
        sig = Signal(4, name=f"{name}_sig")
        shift = Signal(range(_SHIFT_MAX + 1), name=f"{name}_shift")
        is_nan = Signal(name=f"{name}_nan")
        is_inf = Signal(name=f"{name}_inf")
        for sel, f in ((FMT_E4M3, E4M3), (FMT_E5M2, E5M2)):
            e = code[f.man_bits:7]
            man = code[:f.man_bits]
            e_max = (1 << f.exp_bits) - 1
            with m.If(fmt == sel):
                m.d.comb += [
                    sig.eq(Cat(man, e != 0)),
                    # Subnormals share the exponent of the smallest normal.
                    shift.eq(Mux(e == 0, 1, e) + (OPERAND_FRAC_BITS - f.bias - f.man_bits)),
                ]
                if f.has_inf:
                    m.d.comb += [is_nan.eq((e == e_max) & (man != 0)),
                                 is_inf.eq((e == e_max) & (man == 0))]
                else:
                    m.d.comb += is_nan.eq(code[:7] == f.nan_code)
        is_zero = code[:7] == 0
        return code[7], sig, shift, is_nan, is_inf, is_zero

    def elaborate(self, platform):
        m = Module()
        sa, siga, xa, nan_a, inf_a, zero_a = self._unpack(m, self.i_a, self.i_fmt_a, "a")
        sb, sigb, xb, nan_b, inf_b, zero_b = self._unpack(m, self.i_b, self.i_fmt_b, "b")
        prod = Signal(8)
        m.d.comb += prod.eq(siga * sigb)
        shift = Signal(range(2 * _SHIFT_MAX + 1))
        m.d.comb += shift.eq(xa + xb)
        nan = nan_a | nan_b | (inf_a & zero_b) | (zero_a & inf_b)
        special = nan_a | nan_b | inf_a | inf_b
        m.d.comb += [
            self.o_neg.eq(sa ^ sb),
            self.o_nan.eq(nan),
            self.o_inf.eq((inf_a | inf_b) & ~nan),
            # NaN/inf codes have finite-looking fields in E4M3 (S.1111.111): mask them.
            self.o_mag.eq(Cat(Mux(special, 0, prod), Const(0, PRODUCT_MAG_BITS - 8)) << shift),
        ]
        return m
