"""One lane of the vector unit: the element-wise datapath of stage 1 and stage 2.

Each ends in the pipeline register of its stage, so that the unit can instantiate the
L copies of each as one shared Verilog module (``rtl.lib.shared``). Golden model:
``models.vector`` (stage A, the ops, the output stage).
"""
from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from models.fp32 import NEG_INF_BITS, ONE_BITS, SIGN_BIT
from models.tensor_cmd import OutFmt, VecOp
from models.vector import GELU_K_F32
from rtl.fp.f32 import is_nan, magnitude, sign
from rtl.fp.fp32_add import FP32Adder
from rtl.fp.fp32_mul import FP32Multiplier
from rtl.fp.fp8_enc import FP8Encoder
from rtl.vector.convert import F32ToBF16, F32ToInt8, FP8Decoder, Int2F32
from rtl.vector.exp import ExpApprox
from rtl.vector.recip import RecipApprox
from rtl.vector.requant import Requant

__all__ = ["LaneCompute", "LaneOutput"]

_GELU_K = int(GELU_K_F32.view("uint32"))


class LaneCompute(wiring.Component):
    """Stage A and the element-wise op of one lane (stage S1 of the unit).

    ``a = i_masked ? -inf : fmul(i_in_int ? i2f(i_x) : i_x, i_imm)``, then ``y`` by
    ``i_op`` (``models.vector`` module docstring). REQUANT ignores stage A: ``y`` is the
    int8 result sign-extended to 32 bits (``i_imm`` = multiplier, ``i_imm2`` = shift).

    Units: 4 FP32Multiplier (imm, z / b*alpha, e*r, a*s), 2 FP32Adder, one ExpApprox,
    one RecipApprox, one Int2F32, one Requant; operands are shared between ops by
    multiplexers (GELU uses the longest chain: 3 multiplies, exp, add, reciprocal).

    Latency: ``o_a`` combinational, ``o_y`` 1 cycle.

    Members
    -------
    i_x, i_b : In(32)
        The lane's words of the ``src`` and ``src2`` rows.
    i_op : In(4)
    i_in_int, i_bias, i_masked : In(1)
    i_imm, i_imm2 : In(32)
    i_m, i_l, i_alpha : In(32)
        The row's state (binary32).
    o_a : Out(32)
        Stage A result (input of the row max), combinational.
    o_y : Out(32)
        Op result (binary32 bits; REQUANT: sign-extended int8), registered: valid one
        cycle after the inputs.
    """

    def __init__(self):
        super().__init__({
            "i_x": In(32), "i_b": In(32), "i_op": In(4), "i_in_int": In(1),
            "i_bias": In(1), "i_masked": In(1), "i_imm": In(32), "i_imm2": In(32),
            "i_m": In(32), "i_l": In(32), "i_alpha": In(32),
            "o_a": Out(32), "o_y": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        op = self.i_op

        def is_op(*ops):
            return Cat(*(op == int(o) for o in ops)).any()

        # --- stage A: int -> binary32, x imm, mask ---------------------------------------
        m.submodules.i2f = i2f = Int2F32(32)
        m.submodules.mul_imm = mul_imm = FP32Multiplier()
        m.d.comb += [i2f.i_a.eq(self.i_x),
                     mul_imm.i_a.eq(Mux(self.i_in_int, i2f.o_result, self.i_x)),
                     mul_imm.i_b.eq(self.i_imm)]
        a = Signal(32)
        m.d.comb += [a.eq(Mux(self.i_masked, NEG_INF_BITS, mul_imm.o_product)),
                     self.o_a.eq(a)]
        a_neg_inf = a == NEG_INF_BITS

        # --- the floating-point ops ------------------------------------------------------
        # GELU: z = a * 1.702; RESCALE: b * alpha
        m.submodules.mul_a = mul_a = FP32Multiplier()
        gelu = is_op(VecOp.GELU)
        m.d.comb += [mul_a.i_a.eq(Mux(gelu, a, self.i_b)),
                     mul_a.i_b.eq(Mux(gelu, _GELU_K, self.i_alpha))]
        z = mul_a.o_product
        # EXP: a + (-m); RESCALE: b * alpha + a; BIAS: a + b
        m.submodules.add_a = add_a = FP32Adder()
        with m.Switch(op):
            with m.Case(VecOp.EXP):
                m.d.comb += [add_a.i_a.eq(a), add_a.i_b.eq(self.i_m ^ SIGN_BIT)]
            with m.Case(VecOp.RESCALE):
                m.d.comb += [add_a.i_a.eq(z), add_a.i_b.eq(a)]
            with m.Default():
                m.d.comb += [add_a.i_a.eq(a), add_a.i_b.eq(self.i_b)]
        # EXP: exp(a - m); GELU: exp(-|z|)
        m.submodules.exp = exp = ExpApprox()
        m.d.comb += exp.i_a.eq(Mux(gelu, z | SIGN_BIT, add_a.o_result))
        e = exp.o_result
        # GELU: d = 1 + e
        m.submodules.add_b = add_b = FP32Adder()
        m.d.comb += [add_b.i_a.eq(ONE_BITS), add_b.i_b.eq(e)]
        # RECIP: 1/a; GELU: 1/d; NORM: 1/l
        m.submodules.recip = recip = RecipApprox()
        with m.Switch(op):
            with m.Case(VecOp.GELU):
                m.d.comb += recip.i_a.eq(add_b.o_result)
            with m.Case(VecOp.NORM):
                m.d.comb += recip.i_a.eq(self.i_l)
            with m.Default():
                m.d.comb += recip.i_a.eq(a)
        r = recip.o_result
        # GELU: s = z >= 0 ? r : e * r;  y = a * s.  NORM: y = a * recip(l)
        m.submodules.mul_b = mul_b = FP32Multiplier()
        m.d.comb += [mul_b.i_a.eq(e), mul_b.i_b.eq(r)]
        z_nonneg = ~sign(z) | (magnitude(z) == 0)
        m.submodules.mul_c = mul_c = FP32Multiplier()
        m.d.comb += [mul_c.i_a.eq(a), mul_c.i_b.eq(Mux(gelu & ~z_nonneg, mul_b.o_product, r))]

        # --- REQUANT (integer) -----------------------------------------------------------
        m.submodules.requant = rq = Requant()
        m.submodules.add_bias = add_bias = _IntAdd()
        m.d.comb += [add_bias.i_a.eq(self.i_x),
                     add_bias.i_b.eq(Mux(self.i_bias, self.i_b, 0)),
                     rq.i_acc.eq(add_bias.o_result), rq.i_mult.eq(self.i_imm),
                     rq.i_shift.eq(self.i_imm2)]

        # --- result select, S1 -> S2 register --------------------------------------------
        y = Signal(32)
        m.d.sync += self.o_y.eq(y)
        with m.Switch(op):
            with m.Case(VecOp.EXP):
                m.d.comb += y.eq(Mux(a_neg_inf, 0, e))
            with m.Case(VecOp.RESCALE, VecOp.BIAS):
                m.d.comb += y.eq(add_a.o_result)
            with m.Case(VecOp.NORM):
                m.d.comb += y.eq(Mux(magnitude(self.i_l) == 0, 0, mul_c.o_product))
            with m.Case(VecOp.RELU):
                m.d.comb += y.eq(Mux(sign(a) & ~is_nan(a), 0, a))
            with m.Case(VecOp.GELU):
                m.d.comb += y.eq(Mux(a_neg_inf, SIGN_BIT, mul_c.o_product))   # -0
            with m.Case(VecOp.RECIP):
                m.d.comb += y.eq(r)
            with m.Case(VecOp.REQUANT):
                m.d.comb += y.eq(rq.o_result.as_signed())
            with m.Default():                       # COPY, ROWMAX, ROWSUM
                m.d.comb += y.eq(a)
        return m


class _IntAdd(wiring.Component):
    """32-bit wrapping add (kept as a component so the lane reads as a list of units)."""

    def __init__(self):
        super().__init__({"i_a": In(32), "i_b": In(32), "o_result": Out(32)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.o_result.eq(self.i_a + self.i_b)
        return m


class LaneOutput(wiring.Component):
    """Output stage of one lane (stage S2 of the unit): ``o = fmul(i_y, i_imm2)``
    converted to ``i_out_fmt``; REQUANT passes ``i_y`` through. Also the binary32 value
    of the word written (``o_deq``), which EXP adds into the running sum.

    Latency: ``o_word`` 1 cycle, ``o_deq`` combinational.

    Members
    -------
    i_y : In(32)
    i_imm2 : In(32)
    i_out_fmt : In(3)
    i_raw : In(1)
        Pass ``i_y`` through unconverted (REQUANT).
    o_word : Out(32)
        Accumulator word: FP32 bits, INT8 sign-extended, FP8 code, ``bf16 << 16``;
        its low byte is the activation code. Registered: valid one cycle after ``i_y``.
    o_deq : Out(32)
        binary32 value of the word (combinational, same cycle as ``i_y``).
    """

    def __init__(self):
        super().__init__({"i_y": In(32), "i_imm2": In(32), "i_out_fmt": In(3),
                          "i_raw": In(1), "o_word": Out(32), "o_deq": Out(32)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mul = mul = FP32Multiplier()
        m.d.comb += [mul.i_a.eq(self.i_y), mul.i_b.eq(self.i_imm2)]
        o = mul.o_product
        m.submodules.int8 = int8 = F32ToInt8()
        m.submodules.bf16 = bf16 = F32ToBF16()
        m.submodules.enc = enc = FP8Encoder()
        m.submodules.dec = dec = FP8Decoder()
        m.submodules.i2f8 = i2f8 = Int2F32(8)
        fp8_fmt = self.i_out_fmt == OutFmt.E5M2
        m.d.comb += [int8.i_a.eq(o), bf16.i_a.eq(o), enc.i_a.eq(o), enc.i_fmt.eq(fp8_fmt),
                     dec.i_code.eq(enc.o_code), dec.i_fmt.eq(fp8_fmt),
                     i2f8.i_a.eq(int8.o_result)]
        word = Signal(32)
        deq = self.o_deq
        m.d.sync += self.o_word.eq(word)
        with m.If(self.i_raw):
            m.d.comb += [word.eq(self.i_y), deq.eq(0)]
        with m.Else():
            with m.Switch(self.i_out_fmt):
                with m.Case(OutFmt.INT8):
                    m.d.comb += [word.eq(int8.o_result.as_signed()), deq.eq(i2f8.o_result)]
                with m.Case(OutFmt.E4M3, OutFmt.E5M2):
                    m.d.comb += [word.eq(enc.o_code), deq.eq(dec.o_result)]
                with m.Case(OutFmt.BF16):
                    m.d.comb += [word.eq(Cat(Const(0, 16), bf16.o_result)),
                                 deq.eq(Cat(Const(0, 16), bf16.o_result))]
                with m.Default():
                    m.d.comb += [word.eq(o), deq.eq(o)]
        return m
