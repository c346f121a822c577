"""Exact fixed-point sum -> binary32 (round to nearest even), pipelined.

The bottom of every FP8 column of the systolic array: the column's exact sum of FP8
products is rounded once here (``models.fp8`` module docstring)."""
from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from models.fp32 import CANONICAL_NAN_BITS, EXP_BIAS, MAN_BITS, NEG_INF_BITS, POS_INF_BITS
from models.fp8 import PRODUCT_FRAC_BITS

__all__ = ["FixedToF32", "fixed_sum_layout", "leading_zeros"]


def fixed_sum_layout(width: int) -> data.StructLayout:
    """An exact column sum: ``sum`` in units of ``2**-PRODUCT_FRAC_BITS`` (two's
    complement, ``width`` = ``models.fp8.acc_fixed_bits(rows)``) and the special-value
    flags of the products summed so far (NaN product, ``+inf`` / ``-inf`` product)."""
    return data.StructLayout({"sum": signed(width), "nan": 1, "pinf": 1, "ninf": 1})


def leading_zeros(m: Module, value, name: str):
    """Leading-zero count of ``value`` as a balanced tree (depth log2 of the width):
    returns a signal; the count is ``len(value)`` for zero."""
    n = len(value)
    size = 1 << max(1, (n - 1).bit_length())
    v = Cat(Const(0, size - n), value) if size > n else value   # pad below: same count

    def tree(bits):
        """(all_zero, count) of a power-of-two-wide slice."""
        if len(bits) == 2:
            return ~bits[0] & ~bits[1], ~bits[1]
        half = len(bits) // 2
        z_hi, c_hi = tree(bits[half:])
        z_lo, c_lo = tree(bits[:half])
        return z_hi & z_lo, Cat(Mux(z_hi, c_lo, c_hi), z_hi)

    zero, count = tree(v)
    out = Signal(range(n + 1), name=name)
    m.d.comb += out.eq(Mux(zero, n, count))
    return out


class FixedToF32(wiring.Component):
    """Rounds an exact fixed-point sum to binary32, or passes its low 32 bits (INT8).

    ``i_fp`` high: ``o_result`` is the binary32 bits of ``i_sum.sum *
    2**-PRODUCT_FRAC_BITS`` rounded to nearest, ties to even; an exact zero gives
    ``+0``; ``i_sum.nan`` or both ``pinf`` and ``ninf`` give ``0x7FC00000``, else
    ``pinf`` / ``ninf`` give ``+inf`` / ``-inf``. No overflow or underflow is possible:
    a nonzero sum lies in ``[2**-32, 2**(width - 33))``, in the normal range for
    ``width <= 160``. ``i_fp`` low: ``o_result`` is ``i_sum.sum[:32]`` (the INT32
    wrap-around sum of INT8 products).

    Pipeline (``STAGES`` registers, all advancing when ``i_en`` is high):

    1. sign and magnitude (a ``width``-bit negation), special-value code;
    2. leading-zero count (a balanced tree);
    3. normalising left shift (in INT8 mode the shift is fixed so that the top 32
       bits are the low 32 of the sum);
    4. sticky bit (OR of the bits below the top 32) and round to nearest even (the
       24-bit significand and its increment, whose carry bumps the exponent, formed in
       parallel and selected), pack.

    The registers are reset-less (datapath only: the user tracks which slots hold
    valid sums).

    Golden model: ``models.fp8.round_fixed_f32`` (and ``gemm_fp8`` through the array).

    Latency: ``STAGES`` = 4 cycles. Throughput: one sum per cycle.

    Parameters
    ----------
    width : int
        Width of ``i_sum.sum`` (34..160).

    Members
    -------
    i_en : In(1)
        Advance enable.
    i_sum : In(fixed_sum_layout(width))
        The exact sum and its flags.
    i_fp : In(1)
        FP8 mode (round) rather than INT8 (low 32 bits).
    o_result : Out(32)
        binary32 bits (FP8) or INT32 (INT8), ``STAGES`` advancing cycles later.
    """

    STAGES = 4

    def __init__(self, width: int):
        if not isinstance(width, int) or not 34 <= width <= 160:
            raise ValueError(f"FixedToF32 width must be an integer in 34..160, got {width!r}")
        self._width = width
        super().__init__({
            "i_en": In(1),
            "i_sum": In(fixed_sum_layout(width)),
            "i_fp": In(1),
            "o_result": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        w = self._width
        mw = w - 1                     # magnitude bits: |sum| < 2**(w-1)
        keep = 32                      # bits kept after normalising

        def stage(bits, value, name):
            # datapath registers: not reset (the user tracks which slots are valid)
            reg = Signal(bits, name=name, reset_less=True)
            with m.If(self.i_en):
                m.d.sync += reg.eq(value)
            return reg

        # 1: sign / magnitude; specials resolved to their code.
        s = self.i_sum
        neg = s.sum[-1]
        mag_in = Mux(self.i_fp, Mux(neg, -s.sum, s.sum), s.sum[:32])
        nan = s.nan | (s.pinf & s.ninf)
        special_in = Signal(32)
        m.d.comb += special_in.eq(Mux(nan, CANONICAL_NAN_BITS,
                                      Mux(s.pinf, POS_INF_BITS, NEG_INF_BITS)))
        mag1 = stage(mw, mag_in[:mw], "mag_s1")
        sign1 = stage(1, neg & self.i_fp, "sign_s1")
        spec1 = stage(1, self.i_fp & (nan | s.pinf | s.ninf), "special_s1")
        code1 = stage(32, special_in, "code_s1")
        fp1 = stage(1, self.i_fp, "fp_s1")

        # 2: leading zeros (INT8: the fixed shift that brings bit 31 to the top).
        lz = leading_zeros(m, mag1, "lz")
        lz2 = stage(len(lz), Mux(fp1, lz, mw - 32), "lz_s2")
        mag2 = stage(mw, mag1, "mag_s2")
        zero2 = stage(1, fp1 & (mag1 == 0), "zero_s2")
        sign2, spec2, code2, fp2 = (stage(1, sign1, "sign_s2"), stage(1, spec1, "special_s2"),
                                    stage(32, code1, "code_s2"), stage(1, fp1, "fp_s2"))

        # 3: normalise (the shift only: the sticky OR of the bits below the top 32 is
        # stage 4's, in parallel with its increment, not behind the shift).
        norm = Signal(mw, name="norm")
        m.d.comb += norm.eq(mag2 << lz2)
        norm3 = stage(mw, norm, "norm_s3")
        top3 = norm3[mw - keep:]
        sticky3 = norm3[:mw - keep].any()
        # binary32 exponent field of the leading one at bit (mw - 1 - lz): minus 1, so
        # that adding the 24-bit significand (hidden bit set) carries it in.
        exp3 = stage(8, (mw - 1 - PRODUCT_FRAC_BITS + EXP_BIAS - 1) - lz2, "exp_s3")
        zero3, sign3, spec3, code3, fp3 = (stage(1, zero2, "zero_s3"), stage(1, sign2, "sign_s3"),
                                           stage(1, spec2, "special_s3"),
                                           stage(32, code2, "code_s3"), stage(1, fp2, "fp_s3"))

        # 4: round to nearest even on the 24-bit significand; pack. Both candidates
        # (truncated and incremented) are formed in parallel with the sticky OR and
        # the rounding decision selects one.
        sig = top3[keep - 24:]
        guard = top3[keep - 25]
        rest = top3[:keep - 25].any() | sticky3
        up = guard & (rest | sig[0])
        trunc, inc = Signal(31), Signal(31)
        m.d.comb += [trunc.eq(Cat(Const(0, MAN_BITS), exp3) + sig),
                     inc.eq(Cat(Const(0, MAN_BITS), exp3) + sig + 1)]
        packed = Mux(up, inc, trunc)
        result = Mux(~fp3, top3,
                     Mux(spec3, code3, Mux(zero3, 0, Cat(packed, sign3))))
        out = stage(32, result, "result_s4")
        m.d.comb += self.o_result.eq(out)
        return m
