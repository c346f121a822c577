"""The vector unit: element-wise ops, conversions and softmax state on accumulator rows."""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import memory, stream, wiring
from amaranth.lib.wiring import In, Out

from models.config import JalapenoConfig
from models.tensor_cmd import VECTOR_READS_SRC2, VECTOR_WRITES, VecOp
from rtl.fp.fp32_add import FP32Adder
from rtl.fp.fp32_mul import FP32Multiplier
from rtl.shared_module import SharedInstance
from rtl.formats import tensor_cmd_layout
from rtl.vector.exp import ExpApprox
from rtl.vector.lane import LaneCompute, LaneOutput
from rtl.vector.ports import MemReadSignature, MemWriteSignature
from rtl.vector.reduce import FMax, RowMax, RowSum

__all__ = ["VectorUnit", "PIPELINE_DEPTH"]

ADDR_BITS = 16
#: Cycles from a row's read to the clock edge that writes its result (read issue,
#: stage 1, stage 2, write register): row i of a command accepted in cycle c is read
#: in cycle c+1+i and written at the end of cycle c+4+i.
PIPELINE_DEPTH = 4

_NEG_INF = 0xFF80_0000
_ONE = 0x3F80_0000
_STATE_INIT_WORD = _NEG_INF | (0 << 32) | (_ONE << 64)    # m | l | alpha


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
    S3     the write registers drive ``acc_wr`` / ``act_wr``
    ====== ===================================================================

    Latency: a command accepted in cycle ``c`` reads row ``i`` in cycle ``c+1+i``
    and writes it at the clock edge ending cycle ``c+4+i``; ``idle`` rises in cycle
    ``c+count+4``. A new command is accepted only when ``idle`` (no overlap: the next
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
        Emit the lane datapaths (:class:`rtl.vector.lane.LaneCompute`,
        :class:`rtl.vector.lane.LaneOutput`) once each as shared Verilog modules
        (``verilog_submodules()``) instead of L copies (default; Amaranth's Python
        simulator needs ``False``).

    Members
    -------
    i_cmd : In(stream.Signature(tensor_cmd_layout()))
        Legal VECTOR commands only (the tensor core filters with
        ``models.tensor_cmd.check``); ``unit`` is ignored. Ready only when idle.
    idle : Out(1)
        No command in progress and every write done (a fence for the tensor core).
    acc_rd_a, acc_rd_b : Out(MemReadSignature(16, 32 * L))
        Reads of the ``src`` and ``src2`` rows (data one cycle after ``en``).
    acc_wr : Out(MemWriteSignature(16, 32 * L))
        Accumulator row writes.
    act_wr : Out(MemWriteSignature(16, 8 * R))
        Activation row writes (``dst_act``; lane j in bits ``8j .. 8j+7``).
    """

    def __init__(self, config: JalapenoConfig, *, shared_lanes: bool = True):
        if not isinstance(config, JalapenoConfig):
            raise TypeError(f"VectorUnit needs a JalapenoConfig, got {config!r}")
        self.config = config
        self._shared_lanes = shared_lanes
        self._lane_modules: dict[str, wiring.Component] = {}
        self.lanes = lanes = config.systolic.cols
        self.act_lanes = config.systolic.rows
        self.state_rows = config.tensor.acc_rows
        super().__init__({
            "i_cmd": In(stream.Signature(tensor_cmd_layout())),
            "idle": Out(1),
            "acc_rd_a": Out(MemReadSignature(ADDR_BITS, 32 * lanes)),
            "acc_rd_b": Out(MemReadSignature(ADDR_BITS, 32 * lanes)),
            "acc_wr": Out(MemWriteSignature(ADDR_BITS, 32 * lanes)),
            "act_wr": Out(MemWriteSignature(ADDR_BITS, 8 * self.act_lanes)),
        })

    def verilog_submodules(self) -> dict[str, wiring.Component]:
        """Lane modules the emitted Verilog instantiates (filled in by elaboration)."""
        return dict(self._lane_modules)

    def _place(self, m: Module, cls, name: str):
        """Add a lane component: a shared Verilog module instance, or a submodule."""
        comp = cls()
        if not self._shared_lanes:
            m.submodules[name] = comp
            return comp
        kind = "".join("_" + ch.lower() if ch.isupper() else ch for ch in cls.__name__)
        module = f"jalapeno_vector{kind}"
        if module in self._lane_modules:
            comp._MustUse__silence = True        # the first one of its kind is emitted
        else:
            self._lane_modules[module] = comp
        inst = SharedInstance(comp, module, name)
        m.submodules[name] = inst.instance()
        return inst

    def elaborate(self, platform):
        m = Module()
        L = self.lanes
        self._lane_modules.clear()

        cmd = Signal(tensor_cmd_layout())
        op = cmd.op

        def is_op(*ops):
            return Cat(*(op == int(o) for o in ops)).any()

        # --- control: accept when idle, issue one row per cycle ------------------------
        busy = Signal()
        row = Signal(ADDR_BITS)
        v1 = Signal()
        v2 = Signal()
        v3 = Signal()
        m.d.comb += [self.idle.eq(~busy & ~v1 & ~v2 & ~v3),
                     self.i_cmd.ready.eq(self.idle)]
        with m.If(self.i_cmd.valid & self.i_cmd.ready):
            m.d.sync += [cmd.eq(self.i_cmd.payload), busy.eq(1), row.eq(0)]
        with m.Elif(busy):
            m.d.sync += row.eq(row + 1)
            with m.If(row == cmd.count - 1):
                m.d.sync += busy.eq(0)

        # --- S0: reads ---------------------------------------------------------------
        reads_a = ~is_op(VecOp.STATE_INIT)
        reads_b = is_op(*VECTOR_READS_SRC2) | (is_op(VecOp.REQUANT) & cmd.bias)
        uses_state = is_op(VecOp.ROWMAX, VecOp.EXP, VecOp.RESCALE, VecOp.NORM, VecOp.ROWSUM)
        m.d.comb += [
            self.acc_rd_a.addr.eq(cmd.src + row), self.acc_rd_a.en.eq(busy & reads_a),
            self.acc_rd_b.addr.eq(cmd.src2 + row), self.acc_rd_b.en.eq(busy & reads_b),
        ]
        m.submodules.state_mem = state_mem = memory.Memory(
            shape=96, depth=self.state_rows, init=[_STATE_INIT_WORD] * self.state_rows)
        st_rd = state_mem.read_port(domain="sync")
        st_wr = state_mem.write_port()
        m.d.comb += [st_rd.addr.eq(cmd.state + row), st_rd.en.eq(busy & uses_state)]

        i1 = Signal(ADDR_BITS)
        dst1 = Signal(ADDR_BITS)
        st1 = Signal(ADDR_BITS)
        m.d.sync += [v1.eq(busy), i1.eq(row), dst1.eq(cmd.dst + row), st1.eq(cmd.state + row)]

        # --- S1: stage A, op, row max ---------------------------------------------------
        m1, l1, alpha1 = st_rd.data[:32], st_rd.data[32:64], st_rd.data[64:96]
        lanes_a = []
        y2 = []
        for j in range(L):
            lane = self._place(m, LaneCompute, f"lane{j}")
            causal = cmd.causal & (cmd.k_base + j > cmd.q_base + i1)
            pad = cmd.pad & (cmd.k_base + j >= cmd.kv_len)
            m.d.comb += [
                lane.x.eq(self.acc_rd_a.data[32 * j:32 * j + 32]),
                lane.b.eq(self.acc_rd_b.data[32 * j:32 * j + 32]),
                lane.op.eq(op), lane.in_int.eq(cmd.in_int), lane.bias.eq(cmd.bias),
                lane.masked.eq(causal | pad), lane.imm.eq(cmd.imm), lane.imm2.eq(cmd.imm2),
                lane.m.eq(m1), lane.l.eq(l1), lane.alpha.eq(alpha1),
            ]
            lanes_a.append(lane.a)
            y2.append(lane.y)                      # registered in the lane (S1 -> S2)
        m.submodules.row_max = row_max = RowMax(L)
        m.d.comb += row_max.a.eq(Cat(*lanes_a))
        m.submodules.max_m = max_m = FMax()
        m.d.comb += [max_m.a.eq(m1), max_m.b.eq(row_max.result)]

        m_old2 = Signal(32)
        m_new2 = Signal(32)
        l2 = Signal(32)
        alpha2 = Signal(32)
        dst2 = Signal(ADDR_BITS)
        st2 = Signal(ADDR_BITS)
        m.d.sync += [v2.eq(v1), m_old2.eq(m1), m_new2.eq(max_m.result), l2.eq(l1),
                     alpha2.eq(alpha1), dst2.eq(dst1), st2.eq(st1)]

        # --- S2: output stage, row sum, state update ------------------------------------
        words = []
        sums = []
        is_exp = is_op(VecOp.EXP)
        for j in range(L):
            out = self._place(m, LaneOutput, f"out{j}")
            m.d.comb += [out.y.eq(y2[j]), out.imm2.eq(cmd.imm2), out.out_fmt.eq(cmd.out_fmt),
                         out.raw.eq(is_op(VecOp.REQUANT))]
            words.append(out.word)                 # registered in the lane (S2 -> S3)
            sums.append(Mux(is_exp, out.deq, y2[j]))
        m.submodules.row_sum = row_sum = RowSum(L)
        m.d.comb += row_sum.a.eq(Cat(*sums))
        m.submodules.mul_l = mul_l = FP32Multiplier()
        m.submodules.add_l = add_l = FP32Adder()
        m.d.comb += [mul_l.a.eq(l2), mul_l.b.eq(alpha2),
                     add_l.a.eq(mul_l.product), add_l.b.eq(row_sum.result)]
        m.submodules.add_m = add_m = FP32Adder()
        m.submodules.exp_m = exp_m = ExpApprox()
        m.d.comb += [add_m.a.eq(m_old2), add_m.b.eq(m_new2 ^ 0x8000_0000),
                     exp_m.a.eq(add_m.result)]
        alpha_new = Mux(m_new2 == _NEG_INF, _ONE, exp_m.result)

        m.d.comb += [st_wr.addr.eq(st2)]
        with m.Switch(op):
            with m.Case(VecOp.ROWMAX):
                m.d.comb += [st_wr.en.eq(v2), st_wr.data.eq(Cat(m_new2, l2, alpha_new))]
            with m.Case(VecOp.EXP, VecOp.ROWSUM):
                m.d.comb += [st_wr.en.eq(v2), st_wr.data.eq(Cat(m_old2, add_l.result, alpha2))]
            with m.Case(VecOp.STATE_INIT):
                m.d.comb += [st_wr.en.eq(v2), st_wr.data.eq(_STATE_INIT_WORD)]
            with m.Default():
                m.d.comb += [st_wr.en.eq(0), st_wr.data.eq(0)]

        # --- S3: write registers ----------------------------------------------------------
        writes = is_op(*VECTOR_WRITES)
        m.d.sync += [
            v3.eq(v2),
            self.acc_wr.en.eq(v2 & writes & ~cmd.dst_act),
            self.act_wr.en.eq(v2 & writes & cmd.dst_act),
            self.acc_wr.addr.eq(dst2), self.act_wr.addr.eq(dst2),
        ]
        act_codes = [w[:8] for w in words[:self.act_lanes]]
        act_codes += [Const(0, 8)] * (self.act_lanes - len(act_codes))
        m.d.comb += [self.acc_wr.data.eq(Cat(*words)), self.act_wr.data.eq(Cat(*act_codes))]
        return m
