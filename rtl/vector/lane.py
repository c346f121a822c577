"""One lane of the vector unit: the element-wise datapath of stage 1 and stage 2.

Each ends in the pipeline register of its stage, so that the unit can instantiate the
L copies of each as one shared Verilog module (``rtl.shared_module``). Golden model:
``models.vector`` (stage A, the ops, the output stage).
"""
from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from models.tensor_cmd import OutFmt, VecOp
from models.vector import GELU_K_F32
from rtl.fp.fp32_add import FP32Adder
from rtl.fp.fp32_mul import FP32Multiplier
from rtl.fp.fp8_enc import FP8Encoder
from rtl.vector.convert import F32ToBF16, F32ToInt8, FP8Decoder, Int2F32
from rtl.vector.exp import ExpApprox
from rtl.vector.recip import RecipApprox
from rtl.vector.requant import Requant

__all__ = ["LaneCompute", "LaneOutput"]

_NEG_INF = 0xFF80_0000
_ONE = 0x3F80_0000
_GELU_K = int(GELU_K_F32.view("uint32"))


def _is_nan(x):
    return (x[23:31] == 0xFF) & (x[:23] != 0)


class LaneCompute(wiring.Component):
    """Stage A and the element-wise op of one lane (stage S1 of the unit).

    ``a = masked ? -inf : fmul(in_int ? i2f(x) : x, imm)``, then ``y`` by ``op``
    (``models.vector`` module docstring). REQUANT ignores stage A: ``y`` is the int8
    result sign-extended to 32 bits (``imm`` = multiplier, ``imm2`` = shift).

    Units: 4 FP32Multiplier (imm, z / b*alpha, e*r, a*s), 2 FP32Adder, one ExpApprox,
    one RecipApprox, one Int2F32, one Requant; operands are shared between ops by
    multiplexers (GELU uses the longest chain: 3 multiplies, exp, add, reciprocal).

    Members
    -------
    x, b : In(32)
        The lane's words of the ``src`` and ``src2`` rows.
    op : In(4)
    in_int, bias, masked : In(1)
    imm, imm2 : In(32)
    m, l, alpha : In(32)
        The row's state (binary32).
    a : Out(32)
        Stage A result (input of the row max), combinational.
    y : Out(32)
        Op result (binary32 bits; REQUANT: sign-extended int8), registered: valid one
        cycle after the inputs.
    """

    def __init__(self):
        super().__init__({
            "x": In(32), "b": In(32), "op": In(4), "in_int": In(1), "bias": In(1),
            "masked": In(1), "imm": In(32), "imm2": In(32),
            "m": In(32), "l": In(32), "alpha": In(32),
            "a": Out(32), "y": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        op = self.op

        def is_op(*ops):
            return Cat(*(op == int(o) for o in ops)).any()

        m.submodules.i2f = i2f = Int2F32(32)
        m.submodules.mul_imm = mul_imm = FP32Multiplier()
        m.d.comb += [i2f.a.eq(self.x),
                     mul_imm.a.eq(Mux(self.in_int, i2f.result, self.x)),
                     mul_imm.b.eq(self.imm)]
        a = Signal(32)
        m.d.comb += [a.eq(Mux(self.masked, _NEG_INF, mul_imm.product)), self.a.eq(a)]
        a_neg_inf = a == _NEG_INF

        # GELU: z = a * 1.702; RESCALE: b * alpha
        m.submodules.mul_a = mul_a = FP32Multiplier()
        gelu = is_op(VecOp.GELU)
        m.d.comb += [mul_a.a.eq(Mux(gelu, a, self.b)), mul_a.b.eq(Mux(gelu, _GELU_K, self.alpha))]
        z = mul_a.product
        # EXP: a + (-m); RESCALE: b * alpha + a; BIAS: a + b
        m.submodules.add_a = add_a = FP32Adder()
        with m.Switch(op):
            with m.Case(VecOp.EXP):
                m.d.comb += [add_a.a.eq(a), add_a.b.eq(self.m ^ 0x8000_0000)]
            with m.Case(VecOp.RESCALE):
                m.d.comb += [add_a.a.eq(z), add_a.b.eq(a)]
            with m.Default():
                m.d.comb += [add_a.a.eq(a), add_a.b.eq(self.b)]
        # EXP: exp(a - m); GELU: exp(-|z|)
        m.submodules.exp = exp = ExpApprox()
        m.d.comb += exp.a.eq(Mux(gelu, z | 0x8000_0000, add_a.result))
        e = exp.result
        # GELU: d = 1 + e
        m.submodules.add_b = add_b = FP32Adder()
        m.d.comb += [add_b.a.eq(_ONE), add_b.b.eq(e)]
        # RECIP: 1/a; GELU: 1/d; NORM: 1/l
        m.submodules.recip = recip = RecipApprox()
        with m.Switch(op):
            with m.Case(VecOp.GELU):
                m.d.comb += recip.a.eq(add_b.result)
            with m.Case(VecOp.NORM):
                m.d.comb += recip.a.eq(self.l)
            with m.Default():
                m.d.comb += recip.a.eq(a)
        r = recip.result
        # GELU: s = z >= 0 ? r : e * r;  y = a * s.  NORM: y = a * recip(l)
        m.submodules.mul_b = mul_b = FP32Multiplier()
        m.d.comb += [mul_b.a.eq(e), mul_b.b.eq(r)]
        z_nonneg = ~z[31] | (z[:31] == 0)
        m.submodules.mul_c = mul_c = FP32Multiplier()
        m.d.comb += [mul_c.a.eq(a), mul_c.b.eq(Mux(gelu & ~z_nonneg, mul_b.product, r))]

        m.submodules.requant = rq = Requant()
        m.submodules.add_bias = add_bias = _IntAdd()
        m.d.comb += [add_bias.a.eq(self.x), add_bias.b.eq(Mux(self.bias, self.b, 0)),
                     rq.acc.eq(add_bias.result), rq.mult.eq(self.imm), rq.shift.eq(self.imm2)]

        y = Signal(32)
        m.d.sync += self.y.eq(y)
        with m.Switch(op):
            with m.Case(VecOp.EXP):
                m.d.comb += y.eq(Mux(a_neg_inf, 0, e))
            with m.Case(VecOp.RESCALE, VecOp.BIAS):
                m.d.comb += y.eq(add_a.result)
            with m.Case(VecOp.NORM):
                m.d.comb += y.eq(Mux(self.l[:31] == 0, 0, mul_c.product))
            with m.Case(VecOp.RELU):
                m.d.comb += y.eq(Mux(a[31] & ~_is_nan(a), 0, a))
            with m.Case(VecOp.GELU):
                m.d.comb += y.eq(Mux(a_neg_inf, 0x8000_0000, mul_c.product))
            with m.Case(VecOp.RECIP):
                m.d.comb += y.eq(r)
            with m.Case(VecOp.REQUANT):
                m.d.comb += y.eq(rq.result.as_signed())
            with m.Default():                       # COPY, ROWMAX, ROWSUM
                m.d.comb += y.eq(a)
        return m


class _IntAdd(wiring.Component):
    """32-bit wrapping add (kept as a component so the lane reads as a list of units)."""

    def __init__(self):
        super().__init__({"a": In(32), "b": In(32), "result": Out(32)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.result.eq(self.a + self.b)
        return m


class LaneOutput(wiring.Component):
    """Output stage of one lane (stage S2 of the unit): ``o = fmul(y, imm2)``
    converted to ``out_fmt``; REQUANT passes ``y`` through. Also the binary32 value of
    the word written (``deq``), which EXP adds into the running sum.

    Members
    -------
    y : In(32)
    imm2 : In(32)
    out_fmt : In(3)
    raw : In(1)
        Pass ``y`` through unconverted (REQUANT).
    word : Out(32)
        Accumulator word: FP32 bits, INT8 sign-extended, FP8 code, ``bf16 << 16``;
        its low byte is the activation code. Registered: valid one cycle after ``y``.
    deq : Out(32)
        binary32 value of the word (combinational, same cycle as ``y``).
    """

    def __init__(self):
        super().__init__({"y": In(32), "imm2": In(32), "out_fmt": In(3), "raw": In(1),
                          "word": Out(32), "deq": Out(32)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mul = mul = FP32Multiplier()
        m.d.comb += [mul.a.eq(self.y), mul.b.eq(self.imm2)]
        o = mul.product
        m.submodules.int8 = int8 = F32ToInt8()
        m.submodules.bf16 = bf16 = F32ToBF16()
        m.submodules.enc = enc = FP8Encoder()
        m.submodules.dec = dec = FP8Decoder()
        m.submodules.i2f8 = i2f8 = Int2F32(8)
        fp8_fmt = self.out_fmt == OutFmt.E5M2
        m.d.comb += [int8.a.eq(o), bf16.a.eq(o), enc.a.eq(o), enc.fmt.eq(fp8_fmt),
                     dec.code.eq(enc.code), dec.fmt.eq(fp8_fmt), i2f8.a.eq(int8.result)]
        word = Signal(32)
        m.d.sync += self.word.eq(word)
        with m.If(self.raw):
            m.d.comb += [word.eq(self.y), self.deq.eq(0)]
        with m.Else():
            with m.Switch(self.out_fmt):
                with m.Case(OutFmt.INT8):
                    m.d.comb += [word.eq(int8.result.as_signed()), self.deq.eq(i2f8.result)]
                with m.Case(OutFmt.E4M3, OutFmt.E5M2):
                    m.d.comb += [word.eq(enc.code), self.deq.eq(dec.result)]
                with m.Case(OutFmt.BF16):
                    m.d.comb += [word.eq(Cat(Const(0, 16), bf16.result)),
                                 self.deq.eq(Cat(Const(0, 16), bf16.result))]
                with m.Default():
                    m.d.comb += [word.eq(o), self.deq.eq(o)]
        return m
