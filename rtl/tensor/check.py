"""Legality check of a tensor-core command in RTL: ``models.tensor_cmd.check`` in gates."""
from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from models.config import JalapenoConfig
from models.tensor_cmd import (ERR_CODE_BITS, VECTOR_READS_SRC, VECTOR_READS_SRC2, VECTOR_USES_STATE,
                               VECTOR_WRITES, ErrCode, OutFmt, Unit, VecOp)
from rtl.formats import tensor_cmd_layout

__all__ = ["CmdCheck"]


def _ops(ops) -> tuple[int, ...]:
    return tuple(sorted(int(o) for o in ops))


class CmdCheck(wiring.Component):
    """The :class:`models.tensor_cmd.ErrCode` of a command, combinationally.

    The rules, their order and the codes are those of ``models.tensor_cmd.check`` (the
    golden model): count, op, format (incl. REQUANT INT8 only, STATE_STORE FP32 to the
    accumulator only, TOPK to the activation SRAM INT8 only), then ranges (MATMUL:
    activation, weight, accumulator, FP8; VECTOR: src, src2, dst, state), then
    STATE_LOAD's lane (``k_base < L``: BAD_LANE). The op sets (which ops read
    ``src2``, write, use the softmax state) are read from that module, so the two cannot
    drift apart. Range sums are computed in 17 bits (no wrap-around).

    Parameters
    ----------
    config : JalapenoConfig
        SRAM depths (``tensor``) and array shape and FP8 option (``systolic``).

    Members
    -------
    i_cmd : In(tensor_cmd_layout())
    o_code : Out(ERR_CODE_BITS)
        ``ErrCode`` value (0 = legal).
    """

    def __init__(self, config: JalapenoConfig):
        self._config = config
        super().__init__({"i_cmd": In(tensor_cmd_layout()), "o_code": Out(ERR_CODE_BITS)})

    def elaborate(self, platform):
        m = Module()
        tc, sa = self._config.tensor, self._config.systolic
        c = self.i_cmd
        code = self.o_code
        n = c.count

        def over(base, length, limit):
            return (base + length) > limit     # 17-bit sum: no wrap-around

        op = c.op
        writes = op.matches(*_ops(VECTOR_WRITES))
        reads_src = op.matches(*_ops(VECTOR_READS_SRC))
        reads2 = op.matches(*_ops(VECTOR_READS_SRC2)) | ((op == int(VecOp.REQUANT)) & c.bias)
        uses_state = op.matches(*_ops(VECTOR_USES_STATE))
        fmt_ok = c.out_fmt.matches(*_ops(OutFmt))
        fmt_8bit = c.out_fmt.matches(*_ops((OutFmt.INT8, OutFmt.E4M3, OutFmt.E5M2)))
        dst_limit = Signal(17)
        m.d.comb += dst_limit.eq(Mux(c.dst_act, tc.act_rows, tc.acc_rows))

        m.d.comb += code.eq(int(ErrCode.NONE))
        with m.If(n == 0):
            m.d.comb += code.eq(int(ErrCode.ZERO_COUNT))
        with m.Elif(c.unit == int(Unit.MATMUL)):
            with m.If(over(c.src, n, tc.act_rows)):
                m.d.comb += code.eq(int(ErrCode.ACT_RANGE))
            with m.Elif(over(c.src2, sa.rows, tc.weight_rows)):
                m.d.comb += code.eq(int(ErrCode.WEIGHT_RANGE))
            with m.Elif(over(c.dst, n, tc.acc_rows)):
                m.d.comb += code.eq(int(ErrCode.ACC_RANGE))
            with m.Elif(c.fp8 & (0 if sa.fp8 else 1)):
                m.d.comb += code.eq(int(ErrCode.NO_FP8))
        with m.Else():
            with m.If(~op.matches(*_ops(VecOp))):
                m.d.comb += code.eq(int(ErrCode.BAD_OP))
            with m.Elif(~fmt_ok):
                m.d.comb += code.eq(int(ErrCode.BAD_FMT))
            with m.Elif(writes & c.dst_act & (~fmt_8bit | (0 if sa.rows == sa.cols else 1))):
                m.d.comb += code.eq(int(ErrCode.BAD_FMT))
            with m.Elif((op == int(VecOp.REQUANT)) & (c.out_fmt != int(OutFmt.INT8))):
                m.d.comb += code.eq(int(ErrCode.BAD_FMT))
            with m.Elif((op == int(VecOp.STATE_STORE))
                        & ((c.out_fmt != int(OutFmt.FP32)) | c.dst_act)):
                m.d.comb += code.eq(int(ErrCode.BAD_FMT))
            with m.Elif((op == int(VecOp.TOPK)) & c.dst_act & (c.out_fmt != int(OutFmt.INT8))):
                m.d.comb += code.eq(int(ErrCode.BAD_FMT))
            with m.Elif(reads_src & over(c.src, n, tc.acc_rows)):
                m.d.comb += code.eq(int(ErrCode.ACC_RANGE))
            with m.Elif(reads2 & over(c.src2, n, tc.acc_rows)):
                m.d.comb += code.eq(int(ErrCode.ACC_RANGE))
            with m.Elif(writes & over(c.dst, n, dst_limit)):
                m.d.comb += code.eq(Mux(c.dst_act, int(ErrCode.ACT_RANGE), int(ErrCode.ACC_RANGE)))
            with m.Elif(uses_state & over(c.state, n, tc.acc_rows)):
                m.d.comb += code.eq(int(ErrCode.STATE_RANGE))
            with m.Elif((op == int(VecOp.STATE_LOAD)) & (c.k_base >= sa.cols)):
                m.d.comb += code.eq(int(ErrCode.BAD_LANE))
        return m

