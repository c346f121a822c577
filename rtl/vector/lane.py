"""One lane of the vector unit: the element-wise datapath (compute, then output stage).

Both are pipelines with registered outputs, so that the unit can instantiate the L
copies of each as one shared Verilog module (``rtl.lib.shared``). Golden model:
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
from rtl.lib.pipe import Timeline
from rtl.vector.recip import RecipApprox
from rtl.vector.requant import Requant

__all__ = ["LaneCompute", "LaneOutput"]

_GELU_K = int(GELU_K_F32.view("uint32"))
_MUL = 5            # FP32Multiplier stages in the lanes
_ADD = 4            # FP32Adder stages in the lanes


class LaneCompute(wiring.Component):
    """Stage A and the element-wise op of one lane, pipelined.

    ``a = i_masked ? -inf : fmul(i_in_int ? i2f(i_x) : i_x, i_imm)``, then ``y`` by
    ``i_op`` (``models.vector`` module docstring). REQUANT ignores stage A: ``y`` is the
    int8 result sign-extended to 32 bits (``i_imm`` = multiplier, ``i_imm2`` = shift).
    With ``i_bscale``: EXP gives ``e * 2**i_k`` (``i_k`` added to the exponent field of
    a normal ``e``: ``e`` is ``+0``, NaN or normal <= 1, so this is exact), RESCALE
    ``b * alpha + a * beta``.

    Units: 5 FP32Multiplier (imm, z / b*alpha, a*beta, e*r, a*s), 2 FP32Adder, one ExpApprox,
    one RecipApprox, one Int2F32, one Requant, all pipelined; operands are shared between
    ops by multiplexers. Every op goes down the same pipeline (GELU's chain is the
    longest: 3 multiplies, exp, add, reciprocal); each unit's output is registered and
    operands from earlier stages are delayed to meet it, so ``o_y`` has one latency for
    every op. One row per cycle, no enable: the pipeline advances every cycle.

    Per-row inputs (``i_x``, ``i_b``, ``i_masked``, ``i_m``, ``i_l``, ``i_alpha``,
    ``i_beta``, ``i_k``) are taken in stage 0; the command inputs (``i_op``,
    ``i_in_int``, ``i_bias``, ``i_bscale``, ``i_imm``, ``i_imm2``) must hold still while rows are in flight (the unit changes
    them only when idle).

    Latency: ``o_a`` :attr:`A_LATENCY` cycles, ``o_y`` :attr:`Y_LATENCY` cycles.

    Members
    -------
    i_x, i_b : In(32)
        The lane's words of the ``src`` and ``src2`` rows.
    i_op : In(4)
    i_in_int, i_bias, i_masked, i_bscale : In(1)
    i_imm, i_imm2 : In(32)
    i_m, i_l, i_alpha, i_beta : In(32)
        The row's state (binary32).
    i_k : In(5)
        The row's block-scale exponent.
    o_a : Out(32)
        Stage A result (input of the row max): the mask mux after a register.
    o_y : Out(32)
        Op result (binary32 bits; REQUANT: sign-extended int8), registered.
    """

    #: Cycles from the inputs to ``o_a`` and to ``o_y`` (asserted by elaborate).
    A_LATENCY = 9
    Y_LATENCY = 51

    def __init__(self):
        super().__init__({
            "i_x": In(32), "i_b": In(32), "i_op": In(4), "i_in_int": In(1),
            "i_bias": In(1), "i_masked": In(1), "i_imm": In(32), "i_imm2": In(32),
            "i_m": In(32), "i_l": In(32), "i_alpha": In(32), "i_beta": In(32),
            "i_k": In(5), "i_bscale": In(1), "o_a": Out(32), "o_y": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        op = self.i_op
        t = Timeline(m, "lc")
        x, b, masked, sm, sl, salpha, sbeta, sk = (t.put(v, 0) for v in (
            self.i_x, self.i_b, self.i_masked, self.i_m, self.i_l, self.i_alpha,
            self.i_beta, self.i_k))

        def is_op(*ops):
            return Cat(*(op == int(o) for o in ops)).any()

        def unit(name, comp, inputs: dict, out: str):
            """Add ``comp`` fed by ``inputs`` (port -> value, aligned to the latest
            stage); returns its output registered, tagged with its stage."""
            m.submodules[name] = comp
            s = t.latest(*inputs.values())
            m.d.comb += [getattr(comp, port).eq(t.at(v, s)) for port, v in inputs.items()]
            o = t.put(getattr(comp, out), s + comp.stages)
            return t.reg(o, name=f"{name}_q")

        def mux(sel, *vs):
            """``Mux(sel, vs[0], vs[1])`` of staged values (``sel`` command-constant)."""
            s = t.latest(*vs)
            return t.put(Mux(sel, *(t.at(v, s) for v in vs)), s)

        gelu = is_op(VecOp.GELU)

        # --- stage A: int -> binary32, x imm, mask ---------------------------------------
        xf = unit("i2f", Int2F32(32, stages=2), {"i_a": x}, "o_result")
        prod = unit("mul_imm", FP32Multiplier(_MUL), {
            "i_a": mux(self.i_in_int, xf, x), "i_b": t.const(self.i_imm)}, "o_product")
        s = t.stage(prod)
        a = t.put(Mux(t.at(masked, s), NEG_INF_BITS, prod), s)
        assert s == self.A_LATENCY, s
        m.d.comb += self.o_a.eq(a)

        # --- the floating-point ops ------------------------------------------------------
        # GELU: z = a * 1.702; RESCALE: b * alpha
        z = unit("mul_a", FP32Multiplier(_MUL), {
            "i_a": mux(gelu, a, b), "i_b": mux(gelu, t.const(Const(_GELU_K, 32)), salpha)},
            "o_product")
        # RESCALE with bscale: a * beta (beside b * alpha)
        ab = unit("mul_beta", FP32Multiplier(_MUL), {"i_a": a, "i_b": sbeta}, "o_product")
        # EXP: a + (-m); RESCALE: b * alpha + a (bscale: + a * beta); BIAS: a + b
        add_in_a, add_in_b = Signal(32, name="add_a_in_a"), Signal(32, name="add_a_in_b")
        s = t.latest(z, a, b, sm, ab)
        a_s, z_s, b_s, m_s, ab_s = (t.at(v, s) for v in (a, z, b, sm, ab))
        with m.Switch(op):
            with m.Case(VecOp.EXP):
                m.d.comb += [add_in_a.eq(a_s), add_in_b.eq(m_s ^ SIGN_BIT)]
            with m.Case(VecOp.RESCALE):
                m.d.comb += [add_in_a.eq(z_s), add_in_b.eq(Mux(self.i_bscale, ab_s, a_s))]
            with m.Default():
                m.d.comb += [add_in_a.eq(a_s), add_in_b.eq(b_s)]
        add_a = unit("add_a", FP32Adder(_ADD), {"i_a": t.put(add_in_a, s),
                                                "i_b": t.put(add_in_b, s)}, "o_result")
        # EXP: exp(a - m); GELU: exp(-|z|)
        z_neg = t.put(z | SIGN_BIT, t.stage(z))
        e = unit("exp", ExpApprox(ExpApprox.PIPELINED), {"i_a": mux(gelu, z_neg, add_a)},
                 "o_result")
        # GELU: d = 1 + e
        d = unit("add_b", FP32Adder(_ADD), {"i_a": t.const(Const(ONE_BITS, 32)), "i_b": e},
                 "o_result")
        # RECIP: 1/a; GELU: 1/d; NORM: 1/l
        rin = Signal(32, name="recip_in")
        d_s, l_s, a_s = t.align(d, sl, a)
        s = t.stage(d_s)
        with m.Switch(op):
            with m.Case(VecOp.GELU):
                m.d.comb += rin.eq(d_s)
            with m.Case(VecOp.NORM):
                m.d.comb += rin.eq(l_s)
            with m.Default():
                m.d.comb += rin.eq(a_s)
        r = unit("recip", RecipApprox(RecipApprox.PIPELINED), {"i_a": t.put(rin, s)},
                 "o_result")
        # GELU: s = z >= 0 ? r : e * r;  y = a * s.  NORM: y = a * recip(l)
        er = unit("mul_b", FP32Multiplier(_MUL), {"i_a": e, "i_b": r}, "o_product")
        z_nonneg = t.put(~sign(z) | (magnitude(z) == 0), t.stage(z))
        sel_er = t.put(gelu & ~t.at(z_nonneg, t.stage(er)), t.stage(er))
        s_mul = t.put(Mux(sel_er, er, t.at(r, t.stage(er))), t.stage(er))
        m.submodules.mul_c = mul_c = FP32Multiplier(_MUL)
        s = t.latest(s_mul, a)
        m.d.comb += [mul_c.i_a.eq(t.at(a, s)), mul_c.i_b.eq(s_mul)]
        ys = s + _MUL                              # the stage of the result select

        # --- REQUANT (integer) -----------------------------------------------------------
        m.submodules.add_bias = add_bias = _IntAdd()
        m.d.comb += [add_bias.i_a.eq(x), add_bias.i_b.eq(Mux(self.i_bias, b, 0))]
        acc = t.reg(t.put(add_bias.o_result, 0), name="bias_q")
        m.submodules.requant = rq = Requant(stages=Requant.PIPELINED)
        m.d.comb += [rq.i_acc.eq(acc), rq.i_mult.eq(self.i_imm), rq.i_shift.eq(self.i_imm2)]
        q = t.put(rq.o_result.as_signed(), t.stage(acc) + rq.stages)

        # --- result select, then the output register -------------------------------------
        # (every delay chain is built here, outside the Switch: they load every cycle)
        a_y, e_y, add_y, r_y, q_y = (t.at(v, ys) for v in (a, e, add_a, r, q))
        l_zero = t.at(t.put(magnitude(sl) == 0, 0), ys)
        e_scaled = _scale_pow2(e_y, Mux(self.i_bscale, t.at(sk, ys), 0))
        y = Signal(32)
        m.d.sync += self.o_y.eq(y)
        with m.Switch(op):
            with m.Case(VecOp.EXP):
                m.d.comb += y.eq(Mux(a_y == NEG_INF_BITS, 0, e_scaled))
            with m.Case(VecOp.RESCALE, VecOp.BIAS):
                m.d.comb += y.eq(add_y)
            with m.Case(VecOp.NORM):
                m.d.comb += y.eq(Mux(l_zero, 0, mul_c.o_product))
            with m.Case(VecOp.RELU):
                m.d.comb += y.eq(Mux(sign(a_y) & ~is_nan(a_y), 0, a_y))
            with m.Case(VecOp.GELU):
                m.d.comb += y.eq(Mux(a_y == NEG_INF_BITS, SIGN_BIT, mul_c.o_product))   # -0
            with m.Case(VecOp.RECIP):
                m.d.comb += y.eq(r_y)
            with m.Case(VecOp.REQUANT):
                m.d.comb += y.eq(q_y)
            with m.Default():                       # COPY, ROWMAX, ROWSUM
                m.d.comb += y.eq(a_y)
        assert ys + 1 == self.Y_LATENCY, ys + 1
        t.close()
        return m


def _scale_pow2(e, k):
    """``e * 2**k`` for ``e`` = ``+0``, NaN or a normal binary32 <= 1 and ``k <= 31``:
    ``k`` added to the exponent field of a normal ``e`` (exact: no overflow)."""
    exp = e[23:31]
    normal = (exp != 0) & (exp != 0xFF)
    return Mux(normal, e + (k << 23), e)


class _IntAdd(wiring.Component):
    """32-bit wrapping add (kept as a component so the lane reads as a list of units)."""

    def __init__(self):
        super().__init__({"i_a": In(32), "i_b": In(32), "o_result": Out(32)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.o_result.eq(self.i_a + self.i_b)
        return m


class LaneOutput(wiring.Component):
    """Output stage of one lane, pipelined: ``o = fmul(i_y, i_imm2)`` converted to
    ``i_out_fmt``; REQUANT passes ``i_y`` through. Also the binary32 value of the word
    written (``o_deq``), which EXP adds into the running sum.

    ``i_imm2``, ``i_out_fmt`` and ``i_raw`` must hold still while rows are in flight.

    Latency: ``o_word`` and ``o_deq`` :attr:`LATENCY` cycles (multiplier, register,
    conversion, register, FP8 decode / INT8 -> binary32, register).

    Members
    -------
    i_y : In(32)
    i_imm2 : In(32)
    i_out_fmt : In(3)
    i_raw : In(1)
        Pass ``i_y`` through unconverted (REQUANT).
    o_word : Out(32)
        Accumulator word: FP32 bits, INT8 sign-extended, FP8 code, ``bf16 << 16``;
        its low byte is the activation code. Registered.
    o_deq : Out(32)
        binary32 value of the word, registered (same cycle as ``o_word``).
    """

    #: Cycles from ``i_y`` to ``o_word`` / ``o_deq`` (asserted by elaborate).
    LATENCY = 10

    def __init__(self):
        super().__init__({"i_y": In(32), "i_imm2": In(32), "i_out_fmt": In(3),
                          "i_raw": In(1), "o_word": Out(32), "o_deq": Out(32)})

    def elaborate(self, platform):
        m = Module()
        t = Timeline(m, "lo")
        y = t.put(self.i_y, 0)
        m.submodules.mul = mul = FP32Multiplier(_MUL)
        m.d.comb += [mul.i_a.eq(y), mul.i_b.eq(self.i_imm2)]
        o = t.reg(t.put(mul.o_product, _MUL), name="o_q")
        fp8_fmt = self.i_out_fmt == OutFmt.E5M2
        # INT8: shift | round, saturate | -> binary32 (deq)
        m.submodules.int8 = int8 = F32ToInt8(stages=1)
        m.d.comb += int8.i_a.eq(o)
        q8 = t.put(int8.o_result, t.stage(o) + 1)
        m.submodules.i2f8 = i2f8 = Int2F32(8, stages=1)
        m.d.comb += i2f8.i_a.eq(q8)
        q8_f = t.reg(t.put(i2f8.o_result, t.stage(q8) + 1), name="q8f_q")
        # FP8: encode | decode (deq)
        m.submodules.enc = enc = FP8Encoder(stages=1)
        m.d.comb += [enc.i_a.eq(o), enc.i_fmt.eq(fp8_fmt)]
        code = t.reg(t.put(enc.o_code, t.stage(o) + enc.stages), name="code_q")
        m.submodules.dec = dec = FP8Decoder()
        m.d.comb += [dec.i_code.eq(code), dec.i_fmt.eq(fp8_fmt)]
        code_f = t.reg(t.put(dec.o_result, t.stage(code)), name="codef_q")
        # BF16
        m.submodules.bf16 = bf16 = F32ToBF16()
        m.d.comb += bf16.i_a.eq(o)
        h = t.reg(t.put(bf16.o_result, t.stage(o)), name="bf16_q")

        s = t.latest(q8_f, code_f, h, o)
        y_s, o_s, q8_s, q8f_s, code_s, codef_s, h_s = (
            t.at(v, s) for v in (y, o, q8, q8_f, code, code_f, h))
        word = Signal(32)
        deq = Signal(32)
        m.d.sync += [self.o_word.eq(word), self.o_deq.eq(deq)]
        with m.If(self.i_raw):
            m.d.comb += [word.eq(y_s), deq.eq(0)]
        with m.Else():
            with m.Switch(self.i_out_fmt):
                with m.Case(OutFmt.INT8):
                    m.d.comb += [word.eq(q8_s.as_signed()), deq.eq(q8f_s)]
                with m.Case(OutFmt.E4M3, OutFmt.E5M2):
                    m.d.comb += [word.eq(code_s), deq.eq(codef_s)]
                with m.Case(OutFmt.BF16):
                    m.d.comb += [word.eq(Cat(Const(0, 16), h_s)),
                                 deq.eq(Cat(Const(0, 16), h_s))]
                with m.Default():
                    m.d.comb += [word.eq(o_s), deq.eq(o_s)]
        assert s + 1 == self.LATENCY, s + 1
        t.close()
        return m
