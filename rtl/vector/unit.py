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
from models.vector import VECTOR_LANE_LATENCY, vector_latency
from rtl.vector.lane import LaneCompute, LaneOutput
from rtl.lib.pipe import Timeline
from rtl.vector.reduce import FMax, RowMax, RowSum

__all__ = ["VectorUnit"]

#: A state row after STATE_INIT (and at power-up): m = -inf, l = +0, alpha = 1.0.
_STATE_INIT_WORD = NEG_INF_BITS | (0 << 32) | (ONE_BITS << 64)    # m | l | alpha
_MUL = 5            # FP32Multiplier stages of the state update
_ADD = 4            # FP32Adder stages of the state update


class VectorUnit(wiring.Component):
    """Executes VECTOR :class:`models.tensor_cmd.TensorCmd` s on accumulator rows.

    ``L = config.systolic.cols`` lanes process one accumulator row (L x 32 bits) per
    cycle. The per-row softmax state (running max ``m``, sum ``l``, rescale factor
    ``alpha``, binary32 each) is a memory of ``config.tensor.acc_rows`` entries
    inside the unit, initialised to the STATE_INIT values (power-up only; reset does
    not clear it), read with the row's SRAM reads; each op writes the fields it changes
    when they are ready (ROWMAX ``m``, ``alpha``; EXP / ROWSUM ``l``, the last stage).

    Golden model: ``models.vector.vector_execute`` (bit-exact), operations and
    numerics in its module docstring and docs/vector_unit.md.

    Pipeline (one row per cycle per command, no backpressure on the memory ports, no
    enable): the reads of row i are issued in cycle ``c+1+i``; stage 0 holds the read
    data; the lanes (:class:`LaneCompute`, then :class:`LaneOutput`) give the row's
    words in stage ``models.vector.VECTOR_LANE_LATENCY`` (61), which drive
    ``m_acc_wr`` / ``m_act_wr``; the row max (from stage A, stage 9), ``alpha``, the
    row sum (5 cycles per tree level) and ``l`` follow, and the ``l`` write is the last
    stage (``vector_latency(L) - 2``). Stage table in docs/vector_unit.md.

    Latency: a command accepted in cycle ``c`` writes row ``i`` at the clock edge ending
    cycle ``c + models.vector.vector_write_delay() + i`` (``c+63+i``); ``o_idle`` rises
    in cycle ``c + count + models.vector.vector_latency(L)`` (78 for L = 4). A new
    command is accepted only when ``o_idle`` (no overlap: the next command sees every
    write and state update of the previous one, and the command fields hold still while
    rows are in flight), so a command occupies the unit for ``count +
    vector_latency(L)`` cycles, plus one cycle of handshake. ``elaborate`` asserts
    its pipeline against ``models.vector``.

    Rows of one command must not read rows written by earlier rows of the same
    command (``src < dst < src + count``; in-place ``dst == src`` is fine): the
    model reads every row first (the RTL matches it unless ``dst - src >= 63``).

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
        L = self.lanes
        lanes_ok = LaneCompute.Y_LATENCY + LaneOutput.LATENCY == VECTOR_LANE_LATENCY
        assert lanes_ok, "rtl/vector/lane.py and models.vector.VECTOR_LANE_LATENCY disagree"
        cmd = Signal(tensor_cmd_layout())
        m.submodules.state_mem = state_mem = memory.Memory(
            shape=96, depth=self.state_rows, init=[_STATE_INIT_WORD] * self.state_rows)
        st_rd = state_mem.read_port(domain="sync")
        st_wr = state_mem.write_port(granularity=32)           # en: m, l, alpha
        t = Timeline(m, "vu")
        busy, row = self._control(m, cmd)
        s0 = self._reads(m, cmd, busy, row, st_rd, t)
        a, y = self._compute(m, cmd, s0, st_rd, t)
        words, sums = self._output(m, cmd, y, t)
        self._write(m, cmd, s0, words, t)
        self._state(m, cmd, s0, a, sums, st_rd, st_wr, t)
        # o_idle: no row issued or in flight (the row valid bits of every stage clear)
        t_end = max(VECTOR_LANE_LATENCY, self._st_stage)
        assert 2 + t_end == vector_latency(L), (t_end, vector_latency(L))
        chain = [t.at(s0.v, k) for k in range(t_end + 1)]   # row valid bits, stage k
        m.d.comb += [self.o_idle.eq(~busy & ~Cat(*chain).any()),
                     self.i_cmd.ready.eq(self.o_idle)]
        t.close()
        return m

    @staticmethod
    def _is_op(cmd, *ops):
        return Cat(*(cmd.op == int(o) for o in ops)).any()

    def _control(self, m: Module, cmd):
        """Accept a command when idle, then issue one row per cycle.

        Returns ``(busy, row)``: rows are being issued, and the index of this cycle's.
        """
        busy = Signal()
        row = Signal(SRAM_ADDR_BITS)
        with m.If(self.i_cmd.valid & self.i_cmd.ready):
            m.d.sync += [cmd.eq(self.i_cmd.payload), busy.eq(1), row.eq(0)]
        with m.Elif(busy):
            m.d.sync += row.eq(row + 1)
            with m.If(row == cmd.count - 1):
                m.d.sync += busy.eq(0)
        return busy, row

    def _reads(self, m: Module, cmd, busy, row, st_rd, t):
        """Issue the reads of ``acc[src+i]``, ``acc[src2+i]`` and ``state[state+i]``;
        returns the row's stage-0 registers (valid, index)."""
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
        s0 = SimpleNamespace(v=Signal(name="v0"), i=Signal(SRAM_ADDR_BITS, name="i0"))
        m.d.sync += [s0.v.eq(busy), s0.i.eq(row)]
        t.put(s0.v, 0)
        return s0

    def _compute(self, m: Module, cmd, s0, st_rd, t):
        """Stage A and the op in each lane (:class:`LaneCompute`); returns the lanes'
        stage A results and op results, tagged with their stages."""
        L = self.lanes
        m1, l1, alpha1 = st_rd.data[:32], st_rd.data[32:64], st_rd.data[64:96]
        a, y = [], []
        for j in range(L):
            lane = self._place(m, LaneCompute, f"lane{j}")
            causal = cmd.causal & (cmd.k_base + j > cmd.q_base + s0.i)
            pad = cmd.pad & (cmd.k_base + j >= cmd.kv_len)
            m.d.comb += [
                lane.i_x.eq(self.m_acc_rd_a.data[32 * j:32 * j + 32]),
                lane.i_b.eq(self.m_acc_rd_b.data[32 * j:32 * j + 32]),
                lane.i_op.eq(cmd.op), lane.i_in_int.eq(cmd.in_int), lane.i_bias.eq(cmd.bias),
                lane.i_masked.eq(causal | pad), lane.i_imm.eq(cmd.imm),
                lane.i_imm2.eq(cmd.imm2),
                lane.i_m.eq(m1), lane.i_l.eq(l1), lane.i_alpha.eq(alpha1),
            ]
            a.append(t.put(lane.o_a, LaneCompute.A_LATENCY))
            y.append(t.put(lane.o_y, LaneCompute.Y_LATENCY))
        return a, y

    def _output(self, m: Module, cmd, y, t):
        """The output stage in each lane (:class:`LaneOutput`); returns the words and
        the values the row sum adds (EXP: the value written, else ``y``)."""
        is_exp = self._is_op(cmd, VecOp.EXP)
        words, sums = [], []
        for j in range(self.lanes):
            out = self._place(m, LaneOutput, f"out{j}")
            m.d.comb += [out.i_y.eq(y[j]), out.i_imm2.eq(cmd.imm2),
                         out.i_out_fmt.eq(cmd.out_fmt),
                         out.i_raw.eq(self._is_op(cmd, VecOp.REQUANT))]
            s = t.stage(y[j]) + LaneOutput.LATENCY
            words.append(t.put(out.o_word, s))
            sums.append(t.put(Mux(is_exp, out.o_deq, t.at(y[j], s)), s))
        return words, sums

    def _write(self, m: Module, cmd, s0, words, t):
        """Drive ``m_acc_wr`` / ``m_act_wr`` from the lanes' word registers (lane j's
        low byte is activation code j); the address counts the command's writes."""
        w = t.stage(words[0])
        v = t.at(s0.v, w)
        n = Signal(SRAM_ADDR_BITS, name="n_written")
        with m.If(self.i_cmd.valid & self.i_cmd.ready):
            m.d.sync += n.eq(0)
        with m.Elif(v):
            m.d.sync += n.eq(n + 1)
        writes = self._is_op(cmd, *VECTOR_WRITES)
        act_codes = [wd[:8] for wd in words[:self.act_lanes]]
        act_codes += [Const(0, 8)] * (self.act_lanes - len(act_codes))
        m.d.comb += [
            self.m_acc_wr.en.eq(v & writes & ~cmd.dst_act),
            self.m_act_wr.en.eq(v & writes & cmd.dst_act),
            self.m_acc_wr.addr.eq(cmd.dst + n), self.m_act_wr.addr.eq(cmd.dst + n),
            self.m_acc_wr.data.eq(Cat(*words)), self.m_act_wr.data.eq(Cat(*act_codes)),
        ]

    def _state(self, m: Module, cmd, s0, a, sums, st_rd, st_wr, t):
        """Row max, row sum and the softmax state update, written back to the state
        memory in stage ``self._st_stage``."""
        L = self.lanes
        m1 = t.put(st_rd.data[:32], 0)
        l1 = t.put(st_rd.data[32:64], 0)
        alpha1 = t.put(st_rd.data[64:96], 0)
        # m_new = max(m, row max of a)
        m.submodules.row_max = row_max = RowMax(L, pipelined=True)
        m.d.comb += row_max.i_a.eq(Cat(*t.align(*a)))
        rmax = t.put(row_max.o_result, t.latest(*a) + row_max.latency)
        m.submodules.max_m = max_m = FMax()
        m.d.comb += [max_m.i_a.eq(t.at(m1, t.stage(rmax))), max_m.i_b.eq(rmax)]
        m_new = t.reg(t.put(max_m.o_result, t.stage(rmax)), name="m_new")
        # alpha' = exp(m_old - m_new) (1.0 if m_new = -inf)
        m.submodules.add_m = add_m = FP32Adder(_ADD)
        s = t.stage(m_new)
        m.d.comb += [add_m.i_a.eq(t.at(m1, s)), add_m.i_b.eq(m_new ^ SIGN_BIT)]
        dm = t.reg(t.put(add_m.o_result, s + _ADD), name="dm")
        m.submodules.exp_m = exp_m = ExpApprox(ExpApprox.PIPELINED)
        m.d.comb += exp_m.i_a.eq(dm)
        e_m = t.reg(t.put(exp_m.o_result, t.stage(dm) + exp_m.stages), name="exp_m")
        m_new_e = t.at(m_new, t.stage(e_m))
        alpha_new = t.put(Mux(m_new_e == NEG_INF_BITS, ONE_BITS, e_m), t.stage(e_m))
        # l' = l * alpha + row sum
        m.submodules.mul_l = mul_l = FP32Multiplier(_MUL)
        m.d.comb += [mul_l.i_a.eq(l1), mul_l.i_b.eq(alpha1)]
        l_alpha = t.reg(t.put(mul_l.o_product, _MUL), name="l_alpha")
        m.submodules.row_sum = row_sum = RowSum(L, pipelined=True)
        m.d.comb += row_sum.i_a.eq(Cat(*t.align(*sums)))
        rsum = t.put(row_sum.o_result, t.latest(*sums) + row_sum.latency)
        m.submodules.add_l = add_l = FP32Adder(_ADD)
        s = t.latest(rsum, l_alpha)
        m.d.comb += [add_l.i_a.eq(t.at(l_alpha, s)), add_l.i_b.eq(t.at(rsum, s))]
        l_new = t.reg(t.put(add_l.o_result, s + _ADD), name="l_new")

        # Each op writes only the fields it changes (32-bit write granularity), as soon as
        # they are ready: ROWMAX m and alpha, EXP / ROWSUM l (the last stage), STATE_INIT
        # all three in stage 0. Nothing else waits for the row sum.
        st = self._st_stage = t.stage(l_new)
        v_max, v_l, v_init = (t.at(s0.v, k) for k in (t.stage(alpha_new), st, 0))
        m_new_w = t.at(m_new, t.stage(alpha_new))
        v = Signal(name="v_state")
        n = Signal(SRAM_ADDR_BITS, name="n_state")
        with m.If(self.i_cmd.valid & self.i_cmd.ready):
            m.d.sync += n.eq(0)
        with m.Elif(v):
            m.d.sync += n.eq(n + 1)
        m.d.comb += st_wr.addr.eq(cmd.state + n)
        with m.Switch(cmd.op):
            with m.Case(VecOp.ROWMAX):
                m.d.comb += [v.eq(v_max), st_wr.data.eq(Cat(m_new_w, Const(0, 32), alpha_new)),
                             st_wr.en.eq(Mux(v_max, 0b101, 0))]
            with m.Case(VecOp.EXP, VecOp.ROWSUM):
                m.d.comb += [v.eq(v_l), st_wr.data.eq(Cat(Const(0, 32), l_new, Const(0, 32))),
                             st_wr.en.eq(Mux(v_l, 0b010, 0))]
            with m.Case(VecOp.STATE_INIT):
                m.d.comb += [v.eq(v_init), st_wr.data.eq(_STATE_INIT_WORD),
                             st_wr.en.eq(Mux(v_init, 0b111, 0))]
            with m.Default():
                m.d.comb += [v.eq(0), st_wr.en.eq(0), st_wr.data.eq(0)]
