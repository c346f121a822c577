"""FP8 x FP8 -> exact FP32 multiplier with a run-time format per operand."""
from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from models.fp8 import E4M3, E5M2, FMT_E5M2
from models.fp32 import CANONICAL_NAN_BITS, EXP_BIAS, EXP_BITS, MAN_BITS
from rtl.fp.f32 import inf, zero
from rtl.fp.fp8_fields import unpack_fp8

__all__ = ["FP8Multiplier"]

# Both formats are unpacked to a 4-bit significand with 3 fraction bits (E5M2's two
# mantissa bits are left-aligned), so one 4x4 multiplier serves all four format pairs.
_FRAC = 3


class FP8Multiplier(wiring.Component):
    """Exact product of two OCP FP8 codes as IEEE binary32 bits.

    Each operand is E4M3 (OCP E4M3FN) or E5M2, chosen at run time by ``i_fmt_a`` /
    ``i_fmt_b``. Every FP8 x FP8 product is exactly representable as a *normal* float32
    (at most 8 significant bits, magnitude in ``[2**-32, 2**32)``), so there is no
    rounding, no overflow and no subnormal output.

    Special values:

    * a NaN operand, or ``inf * 0`` (either order): canonical NaN ``0x7FC00000``;
    * ``inf`` times a nonzero value: ``inf`` with sign ``sign_a ^ sign_b``;
    * a zero operand (finite other operand): zero with sign ``sign_a ^ sign_b``.

    Golden model: ``models.fp8.fp8_product_f32`` (bit-exact, NaN canonicalised).

    Latency: 0 cycles (combinational). Resources: one 4x4-bit multiplier, an 8-bit
    leading-one detector and shifter, a 7-bit exponent adder.

    Members
    -------
    i_a, i_b : In(8)
        FP8 codes.
    i_fmt_a, i_fmt_b : In(1)
        Format of ``i_a`` / ``i_b``: ``models.fp8.FMT_E4M3`` (0) or ``FMT_E5M2`` (1).
    o_product : Out(32)
        binary32 bits of ``i_a * i_b``.
    """

    def __init__(self):
        super().__init__({
            "i_a": In(8), "i_fmt_a": In(1),
            "i_b": In(8), "i_fmt_b": In(1),
            "o_product": Out(32),
        })

    @staticmethod
    def _unpack(m, code, fmt, name):
        """Return (sign, sig[4] with _FRAC fraction bits, unbiased exp, is_nan, is_inf,
        is_zero) signals."""
        sign, sig, e1, is_nan, is_inf, is_zero = unpack_fp8(m, code, fmt, name, frac_bits=_FRAC)
        exp = Signal(signed(6), name=f"{name}_uexp")   # -14 .. 15
        m.d.comb += exp.eq(e1 - Mux(fmt == FMT_E5M2, E5M2.bias, E4M3.bias))
        return sign, sig, exp, is_nan, is_inf, is_zero

    def elaborate(self, platform):
        m = Module()
        sa, siga, ea, nan_a, inf_a, zero_a = self._unpack(m, self.i_a, self.i_fmt_a, "a")
        sb, sigb, eb, nan_b, inf_b, zero_b = self._unpack(m, self.i_b, self.i_fmt_b, "b")
        sign = sa ^ sb

        # value = prod * 2**(ea + eb - 2*_FRAC); prod has at most 8 bits.
        prod = Signal(8)
        m.d.comb += prod.eq(siga * sigb)
        lead = Signal(range(8))            # position of the leading one of prod
        lz = Signal(range(8))              # 7 - lead
        for i in range(8):                 # later (higher) bits take priority
            with m.If(prod[i]):
                m.d.comb += [lead.eq(i), lz.eq(7 - i)]
        norm = Signal(8)                   # prod with its leading one at bit 7
        m.d.comb += norm.eq((prod << lz)[:8])
        exp_field = Signal(signed(10))     # 127 + ea + eb - 6 + lead, always 1..254
        m.d.comb += exp_field.eq(ea + eb + lead + (EXP_BIAS - 2 * _FRAC))
        finite = Cat(Const(0, MAN_BITS - 7), norm[:7], exp_field[:EXP_BITS], sign)

        with m.If(nan_a | nan_b | (inf_a & zero_b) | (zero_a & inf_b)):
            m.d.comb += self.o_product.eq(CANONICAL_NAN_BITS)
        with m.Elif(inf_a | inf_b):
            m.d.comb += self.o_product.eq(inf(sign))
        with m.Elif(zero_a | zero_b):
            m.d.comb += self.o_product.eq(zero(sign))
        with m.Else():
            m.d.comb += self.o_product.eq(finite)
        return m
