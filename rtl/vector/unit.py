# amaranth: UnusedElaboratable=no
"""The vector unit: element-wise ops, conversions and softmax state on accumulator rows.

(The pragma above: with shared lanes, only the first lane component of each kind is
elaborated; the others are created for their signature, see :mod:`rtl.lib.shared`.)
"""
from __future__ import annotations

from types import SimpleNamespace

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from models.config import JalapenoConfig
from models.fp32 import NEG_INF_BITS, ONE_BITS, SIGN_BIT
from models.tensor_cmd import VECTOR_READS_SRC2, VECTOR_WRITES, VecOp
from rtl.formats import SRAM_ADDR_BITS, tensor_cmd_layout
from rtl.fp.fp32_add import FP32Adder
from rtl.fp.fp32_mul import FP32Multiplier
from rtl.lib.shared import shared_instance
from rtl.vector.exp import ExpApprox
from rtl.vector.lane import LaneCompute, LaneOutput
from rtl.vector.reduce import FMax, RowMax, RowSum

__all__ = ["VectorUnit"]

#: A state row after STATE_INIT (and at power-up): m = -inf, l = +0, alpha = 1.0.
_STATE_INIT_WORD = NEG_INF_BITS | (0 << 32) | (ONE_BITS << 64)    # m | l | alpha


class VectorUnit(wiring.Component):
    """Executes VECTOR :class:`models.tensor_cmd.TensorCmd` s on accumulator rows.

    ``L = config.systolic.cols`` lanes process one accumulator row (L x 32 bits) per
    cycle. The per-row softmax state (running max ``m``, sum ``l``, rescale factor
    ``alpha``, binary32 each) is a memory of ``config.tensor.acc_rows`` entries
    inside the unit, initialised to the STATE_INIT values (power-up only; reset does
    not clear it), read in stage 0 and written in stage 2 of each row.

    Golden model: ``models.vector.vector_execute`` (bit-exact), operations and
    numerics in its module docstring and docs/vector_unit.md.

    Pipeline (one row per cycle per command, no backpressure on the memory ports):

    ====== ===================================================================
    S0     issue the reads of ``acc[src+i]``, ``acc[src2+i]``, ``state[state+i]``
    S1     stage A (int -> binary32, x imm, mask), the op, row max -> register
    S2     output stage (x imm2, convert), row sum, state update -> register
    S3     the write registers drive ``m_acc_wr`` / ``m_act_wr``
    ====== ===================================================================

    Latency: a command accepted in cycle ``c`` reads row ``i`` in cycle ``c+1+i``
    and writes it at the clock edge ending cycle ``c+4+i``; ``o_idle`` rises in cycle
    ``c+count+4``. A new command is accepted only when ``o_idle`` (no overlap: the next
    command sees every write and state update of the previous one), so a command
    occupies the unit for ``count + 4`` cycles, plus one cycle of handshake.

    Rows of one command must not read rows written by earlier rows of the same
    command (``src < dst < src + count``; in-place ``dst == src`` is fine): the
    model reads every row first.

    Parameters
    ----------
    config : JalapenoConfig
        ``systolic.cols`` lanes, ``systolic.rows`` activation codes per row,
        ``tensor.acc_rows`` state entries.
    shared_lanes : bool
        Place the lane datapaths (:class:`rtl.vector.lane.LaneCompute`,
        :class:`rtl.vector.lane.LaneOutput`) as instances of one shared Verilog module
        each (:func:`rtl.lib.shared.shared_instance`; default) instead of L copies.
        Amaranth's Python simulator needs ``False``.

    Members
    -------
    i_cmd : In(stream.Signature(tensor_cmd_layout()))
        Legal VECTOR commands only (the tensor core filters with
        ``models.tensor_cmd.check``); ``unit`` is ignored. Ready only when idle.
    o_idle : Out(1)
        No command in progress and every write done (a fence for the tensor core).
    m_acc_rd_a, m_acc_rd_b : In(ReadPort.Signature(addr_width=A, shape=32 * L))
        Reads of the ``src`` and ``src2`` rows (``data`` one cycle after ``en``; ``en``
        is driven every cycle).
    m_acc_wr : In(WritePort.Signature(addr_width=A, shape=32 * L))
        Accumulator row writes.
    m_act_wr : In(WritePort.Signature(addr_width=A, shape=8 * R))
        Activation row writes (``dst_act``; lane j in bits ``8j .. 8j+7``).

    The memory ports are ``amaranth.lib.memory``'s own signatures with ``A =
    rtl.formats.SRAM_ADDR_BITS``; the tensor core joins them to its SRAMs' ports with
    ``wiring.connect``.
    """

    def __init__(self, config: JalapenoConfig, *, shared_lanes: bool = True):
        if not isinstance(config, JalapenoConfig):
            raise TypeError(f"VectorUnit needs a JalapenoConfig, got {config!r}")
        self.config = config
        self._shared_lanes = shared_lanes
        self.lanes = lanes = config.systolic.cols
        self.act_lanes = config.systolic.rows
        self.state_rows = config.tensor.acc_rows
        acc_rd = memory.ReadPort.Signature(addr_width=SRAM_ADDR_BITS, shape=32 * lanes)
        super().__init__({
            "i_cmd": In(stream.Signature(tensor_cmd_layout())),
            "o_idle": Out(1),
            "m_acc_rd_a": In(acc_rd),
            "m_acc_rd_b": In(acc_rd),
            "m_acc_wr": In(memory.WritePort.Signature(addr_width=SRAM_ADDR_BITS,
                                                      shape=32 * lanes)),
            "m_act_wr": In(memory.WritePort.Signature(addr_width=SRAM_ADDR_BITS,
                                                      shape=8 * self.act_lanes)),
        })

    def _place(self, m: Module, cls, name: str):
        """Add a lane component: a shared Verilog module instance, or a submodule."""
        comp = cls()
        if self._shared_lanes:
            return shared_instance(m, comp, name)
        m.submodules[name] = comp
        return comp

    def elaborate(self, platform):
        m = Module()
        cmd = Signal(tensor_cmd_layout())
        m.submodules.state_mem = state_mem = memory.Memory(
            shape=96, depth=self.state_rows, init=[_STATE_INIT_WORD] * self.state_rows)
        st_rd = state_mem.read_port(domain="sync")
        st_wr = state_mem.write_port()
        valid = [Signal(name=f"v{k}") for k in (1, 2, 3)]     # a row in S1, S2, S3
        busy, row = self._control(m, cmd, valid)
        s1 = self._s0_reads(m, cmd, busy, row, st_rd, valid[0])
        s2 = self._s1_compute(m, cmd, s1, st_rd, valid[1])
        words = self._s2_output(m, cmd, s2, st_wr)
        self._s3_write(m, cmd, s2, words, valid[2])
        return m

    @staticmethod
    def _is_op(cmd, *ops):
        return Cat(*(cmd.op == int(o) for o in ops)).any()

    def _control(self, m: Module, cmd, valid):
        """Accept a command when idle, then issue one row per cycle.

        Returns ``(busy, row)``: rows are being issued, and the index of this cycle's.
        """
        busy = Signal()
        row = Signal(SRAM_ADDR_BITS)
        v1, v2, v3 = valid
        m.d.comb += [self.o_idle.eq(~busy & ~v1 & ~v2 & ~v3),
                     self.i_cmd.ready.eq(self.o_idle)]
        with m.If(self.i_cmd.valid & self.i_cmd.ready):
            m.d.sync += [cmd.eq(self.i_cmd.payload), busy.eq(1), row.eq(0)]
        with m.Elif(busy):
            m.d.sync += row.eq(row + 1)
            with m.If(row == cmd.count - 1):
                m.d.sync += busy.eq(0)
        return busy, row

    def _s0_reads(self, m: Module, cmd, busy, row, st_rd, v1):
        """S0: read ``acc[src+i]``, ``acc[src2+i]`` and ``state[state+i]``; returns the
        row's S1 registers (valid, index, destination and state row)."""
        is_op = self._is_op
        reads_a = ~is_op(cmd, VecOp.STATE_INIT)
        reads_b = is_op(cmd, *VECTOR_READS_SRC2) | (is_op(cmd, VecOp.REQUANT) & cmd.bias)
        uses_state = is_op(cmd, VecOp.ROWMAX, VecOp.EXP, VecOp.RESCALE, VecOp.NORM,
                           VecOp.ROWSUM)
        m.d.comb += [
            self.m_acc_rd_a.addr.eq(cmd.src + row), self.m_acc_rd_a.en.eq(busy & reads_a),
            self.m_acc_rd_b.addr.eq(cmd.src2 + row), self.m_acc_rd_b.en.eq(busy & reads_b),
            st_rd.addr.eq(cmd.state + row), st_rd.en.eq(busy & uses_state),
        ]
        s1 = SimpleNamespace(v=v1, i=Signal(SRAM_ADDR_BITS, name="i1"),
                             dst=Signal(SRAM_ADDR_BITS, name="dst1"),
                             st=Signal(SRAM_ADDR_BITS, name="st1"))
        m.d.sync += [s1.v.eq(busy), s1.i.eq(row), s1.dst.eq(cmd.dst + row),
                     s1.st.eq(cmd.state + row)]
        return s1

    def _s1_compute(self, m: Module, cmd, s1, st_rd, v2):
        """S1: stage A and the op in each lane (:class:`LaneCompute`, whose ``o_y`` is
        the S1 -> S2 register), the row max and the new running max; returns the row's
        S2 registers (the lanes' ``y``, the state read and the new max)."""
        L = self.lanes
        m1, l1, alpha1 = st_rd.data[:32], st_rd.data[32:64], st_rd.data[64:96]
        lanes_a = []
        y2 = []
        for j in range(L):
            lane = self._place(m, LaneCompute, f"lane{j}")
            causal = cmd.causal & (cmd.k_base + j > cmd.q_base + s1.i)
            pad = cmd.pad & (cmd.k_base + j >= cmd.kv_len)
            m.d.comb += [
                lane.i_x.eq(self.m_acc_rd_a.data[32 * j:32 * j + 32]),
                lane.i_b.eq(self.m_acc_rd_b.data[32 * j:32 * j + 32]),
                lane.i_op.eq(cmd.op), lane.i_in_int.eq(cmd.in_int), lane.i_bias.eq(cmd.bias),
                lane.i_masked.eq(causal | pad), lane.i_imm.eq(cmd.imm),
                lane.i_imm2.eq(cmd.imm2),
                lane.i_m.eq(m1), lane.i_l.eq(l1), lane.i_alpha.eq(alpha1),
            ]
            lanes_a.append(lane.o_a)
            y2.append(lane.o_y)                    # registered in the lane (S1 -> S2)
        m.submodules.row_max = row_max = RowMax(L)
        m.d.comb += row_max.i_a.eq(Cat(*lanes_a))
        m.submodules.max_m = max_m = FMax()
        m.d.comb += [max_m.i_a.eq(m1), max_m.i_b.eq(row_max.o_result)]

        s2 = SimpleNamespace(v=v2, y=y2, m_old=Signal(32, name="m_old2"),
                             m_new=Signal(32, name="m_new2"), l=Signal(32, name="l2"),
                             alpha=Signal(32, name="alpha2"),
                             dst=Signal(SRAM_ADDR_BITS, name="dst2"),
                             st=Signal(SRAM_ADDR_BITS, name="st2"))
        m.d.sync += [s2.v.eq(s1.v), s2.m_old.eq(m1), s2.m_new.eq(max_m.o_result),
                     s2.l.eq(l1), s2.alpha.eq(alpha1), s2.dst.eq(s1.dst), s2.st.eq(s1.st)]
        return s2

    def _s2_output(self, m: Module, cmd, s2, st_wr) -> list:
        """S2: the output stage in each lane (:class:`LaneOutput`, whose ``o_word`` is
        the S2 -> S3 register), the row sum and the state update; returns the words."""
        is_op = self._is_op
        words = []
        sums = []
        is_exp = is_op(cmd, VecOp.EXP)
        for j in range(self.lanes):
            out = self._place(m, LaneOutput, f"out{j}")
            m.d.comb += [out.i_y.eq(s2.y[j]), out.i_imm2.eq(cmd.imm2),
                         out.i_out_fmt.eq(cmd.out_fmt), out.i_raw.eq(is_op(cmd, VecOp.REQUANT))]
            words.append(out.o_word)               # registered in the lane (S2 -> S3)
            sums.append(Mux(is_exp, out.o_deq, s2.y[j]))
        m.submodules.row_sum = row_sum = RowSum(self.lanes)
        m.d.comb += row_sum.i_a.eq(Cat(*sums))
        # l' = l * alpha + row sum;  alpha' = exp(m_old - m_new) (1.0 if m_new = -inf)
        m.submodules.mul_l = mul_l = FP32Multiplier()
        m.submodules.add_l = add_l = FP32Adder()
        m.d.comb += [mul_l.i_a.eq(s2.l), mul_l.i_b.eq(s2.alpha),
                     add_l.i_a.eq(mul_l.o_product), add_l.i_b.eq(row_sum.o_result)]
        m.submodules.add_m = add_m = FP32Adder()
        m.submodules.exp_m = exp_m = ExpApprox()
        m.d.comb += [add_m.i_a.eq(s2.m_old), add_m.i_b.eq(s2.m_new ^ SIGN_BIT),
                     exp_m.i_a.eq(add_m.o_result)]
        alpha_new = Mux(s2.m_new == NEG_INF_BITS, ONE_BITS, exp_m.o_result)

        m.d.comb += [st_wr.addr.eq(s2.st)]
        with m.Switch(cmd.op):
            with m.Case(VecOp.ROWMAX):
                m.d.comb += [st_wr.en.eq(s2.v), st_wr.data.eq(Cat(s2.m_new, s2.l, alpha_new))]
            with m.Case(VecOp.EXP, VecOp.ROWSUM):
                m.d.comb += [st_wr.en.eq(s2.v),
                             st_wr.data.eq(Cat(s2.m_old, add_l.o_result, s2.alpha))]
            with m.Case(VecOp.STATE_INIT):
                m.d.comb += [st_wr.en.eq(s2.v), st_wr.data.eq(_STATE_INIT_WORD)]
            with m.Default():
                m.d.comb += [st_wr.en.eq(0), st_wr.data.eq(0)]
        return words

    def _s3_write(self, m: Module, cmd, s2, words, v3):
        """S3: the write registers drive ``m_acc_wr`` / ``m_act_wr`` (lane j's low byte
        is activation code j)."""
        writes = self._is_op(cmd, *VECTOR_WRITES)
        m.d.sync += [
            v3.eq(s2.v),
            self.m_acc_wr.en.eq(s2.v & writes & ~cmd.dst_act),
            self.m_act_wr.en.eq(s2.v & writes & cmd.dst_act),
            self.m_acc_wr.addr.eq(s2.dst), self.m_act_wr.addr.eq(s2.dst),
        ]
        act_codes = [w[:8] for w in words[:self.act_lanes]]
        act_codes += [Const(0, 8)] * (self.act_lanes - len(act_codes))
        m.d.comb += [self.m_acc_wr.data.eq(Cat(*words)),
                     self.m_act_wr.data.eq(Cat(*act_codes))]
