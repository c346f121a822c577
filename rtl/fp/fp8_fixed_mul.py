"""FP8 x FP8 -> exact fixed-point product (the systolic array's FP8 multiplier)."""
from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from models.fp8 import E4M3, E5M2, FMT_E4M3, FMT_E5M2, OPERAND_FRAC_BITS, PRODUCT_MAG_BITS
from rtl.fp.fp8_fields import unpack_fp8

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

    Latency: 0 cycles (combinational), or 2 cycles with ``pipelined=True``: the
    decoded operands are registered, then the significand product and the shift amount
    (advancing when ``i_en`` is high); the shift follows the second register. Resources: a 4x4-bit shift-and-add multiplier in
    LUTs, a 5-bit exponent-offset adder, an 8-bit-in / 64-bit-out left shifter.

    Parameters
    ----------
    pipelined : bool
        Registers after the decode and after the multiply (``i_en`` member).

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
    i_en : In(1)
        Advance enable of the register (only with ``pipelined=True``).
    """

    def __init__(self, *, pipelined: bool = False):
        self._pipelined = bool(pipelined)
        members = {
            "i_a": In(8), "i_fmt_a": In(1),
            "i_b": In(8), "i_fmt_b": In(1),
            "o_mag": Out(PRODUCT_MAG_BITS),
            "o_neg": Out(1), "o_nan": Out(1), "o_inf": Out(1),
        }
        if self._pipelined:
            members["i_en"] = In(1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()

        def stage(values, name):
            """``values`` registered (``pipelined``) or passed through."""
            if not self._pipelined:
                return values
            # datapath registers: not reset (the user tracks which slots are valid)
            regs = [Signal.like(v, name=f"{v.name}_{name}", reset_less=True) for v in values]
            with m.If(self.i_en):
                m.d.sync += [r.eq(v) for r, v in zip(regs, values)]
            return regs

        sa, siga, xa, nan_a, inf_a, zero_a = unpack_fp8(m, self.i_a, self.i_fmt_a, "a")
        sb, sigb, xb, nan_b, inf_b, zero_b = unpack_fp8(m, self.i_b, self.i_fmt_b, "b")
        nan, special, neg, inf = Signal(), Signal(), Signal(), Signal()
        m.d.comb += [
            nan.eq(nan_a | nan_b | (inf_a & zero_b) | (zero_a & inf_b)),
            special.eq(nan_a | nan_b | inf_a | inf_b),
            neg.eq(sa ^ sb),
            inf.eq((inf_a | inf_b) & ~nan),
        ]
        # shift = max(e_a, 1) + max(e_b, 1) + off(fmt_a) + off(fmt_b), off(f) =
        # OPERAND_FRAC_BITS - bias - man_bits: the offsets' sum is a function of the
        # two format bits (a few LUTs), registered beside the exponents. (An expression,
        # not a Switch: Icarus never runs an `always @*` whose inputs never change.)
        offs = {sel: OPERAND_FRAC_BITS - f.bias - f.man_bits
                for sel, f in ((FMT_E4M3, E4M3), (FMT_E5M2, E5M2))}
        off = Signal(signed(7), name="off")
        m.d.comb += off.eq(Mux(self.i_fmt_a == FMT_E5M2, offs[FMT_E5M2], offs[FMT_E4M3])
                           + Mux(self.i_fmt_b == FMT_E5M2, offs[FMT_E5M2], offs[FMT_E4M3]))
        # Stage 1: decoded operands and flags.
        siga, sigb, xa, xb, off, nan, special, neg, inf = stage(
            [siga, sigb, xa, xb, off, nan, special, neg, inf], "q1")
        # The significand product as a shift-and-add tree (LUTs and two short carry
        # chains): a $mul cell would be merged with the PE's INT8 multiplier into one
        # DSP. NaN/inf codes look finite in E4M3 (S.1111.111): masked after the stage.
        pp = [Signal(8, name=f"pp{i}") for i in range(4)]
        m.d.comb += [pp[i].eq(Mux(sigb[i], siga, 0) << i) for i in range(4)]
        prod = Signal(8)
        m.d.comb += prod.eq((pp[0] + pp[1]) + (pp[2] + pp[3]))
        shift = Signal(range(2 * _SHIFT_MAX + 1))
        m.d.comb += shift.eq(xa + xb + off)       # >= 0: max(e, 1) >= 1 > -off/2
        # Stage 2: significand product and shift amount.
        prod, shift, nan, special, neg, inf = stage([prod, shift, nan, special, neg, inf],
                                                    "q2")
        m.d.comb += [
            self.o_neg.eq(neg),
            self.o_nan.eq(nan),
            self.o_inf.eq(inf),
            self.o_mag.eq(Cat(Mux(special, 0, prod), Const(0, PRODUCT_MAG_BITS - 8)) << shift),
        ]
        return m
