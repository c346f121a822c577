# amaranth: UnusedElaboratable=no
"""The vector unit: element-wise ops, conversions and softmax state on accumulator rows.

(The pragma above: with shared lanes, only the first lane component of each kind is
elaborated; the others are created for their signature, see :mod:`rtl.lib.shared`.)
"""
from __future__ import annotations

from types import SimpleNamespace

import functools
import operator

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
from models.vector import K_MAX, VECTOR_LANE_LATENCY, vector_latency
from rtl.vector.lane import LaneCompute, LaneOutput
from rtl.lib.pipe import Timeline
from rtl.vector.reduce import FMax, RowMax, RowSum
from rtl.vector.topk import RankNetwork

__all__ = ["VectorUnit"]

#: A state row after STATE_INIT (and at power-up): m = -inf, l = +0, alpha = 1.0,
#: beta = 1.0, k = 0. Fields of 32 bits (the write granularity): m | l | alpha | beta | k.
_STATE_INIT_WORD = NEG_INF_BITS | (0 << 32) | (ONE_BITS << 64) | (ONE_BITS << 96)
_STATE_BITS = 5 * 32
#: State write enables (one bit per 32-bit field).
_EN_M, _EN_L, _EN_ALPHA, _EN_BETA, _EN_K = 1, 2, 4, 8, 16
_K_BITS = K_MAX.bit_length()
_MUL = 5            # FP32Multiplier stages of the state update
_ADD = 4            # FP32Adder stages of the state update


class VectorUnit(wiring.Component):
    """Executes VECTOR :class:`models.tensor_cmd.TensorCmd` s on accumulator rows.

    ``L = config.systolic.cols`` lanes process one accumulator row (L x 32 bits) per
    cycle. The per-row softmax state (running max ``m``, sum ``l``, rescale factor
    ``alpha``, scale ``beta``, binary32 each, and the block-scale exponent ``k``: five
    32-bit fields) is a memory of ``config.tensor.acc_rows`` entries inside the unit,
    initialised to the STATE_INIT values (power-up only; reset does not clear it), read
    with the row's SRAM reads (STATE_STORE: just before the row's write); each op
    writes the fields it changes when they are ready (ROWMAX ``m``, ``alpha``,
    ``beta``, ``k``; STATE_MERGE all five; EXP / ROWSUM ``l``, the last stage).

    Golden model: ``models.vector.vector_execute`` (bit-exact), operations and
    numerics in its module docstring and docs/vector_unit.md.

    Pipeline (one row per cycle per command, no backpressure on the memory ports, no
    enable): the reads of row i are issued in cycle ``c+1+i``; stage 0 holds the read
    data; the lanes (:class:`LaneCompute`, then :class:`LaneOutput`) give the row's
    words in stage ``models.vector.VECTOR_LANE_LATENCY`` (61), which drive
    ``m_acc_wr`` / ``m_act_wr``; the row max (from stage A, stage 9), ``alpha`` and
    ``g`` (block scale), the row sum (5 cycles per tree level), its product with
    ``beta`` and ``l`` follow, and the ``l`` write is the last stage
    (``vector_latency(L) - 2``). Stage table in docs/vector_unit.md.

    Latency: a command accepted in cycle ``c`` writes row ``i`` at the clock edge ending
    cycle ``c + models.vector.vector_write_delay() + i`` (``c+63+i``); ``o_idle`` rises
    in cycle ``c + count + models.vector.vector_latency(L)`` (84 for L = 4). A new
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
            shape=_STATE_BITS, depth=self.state_rows,
            init=[_STATE_INIT_WORD] * self.state_rows)
        st_rd = state_mem.read_port(domain="sync")
        st_wr = state_mem.write_port(granularity=32)   # en: m, l, alpha, beta, k
        t = Timeline(m, "vu")
        n_wr = Signal(SRAM_ADDR_BITS, name="n_written")  # rows written by this command
        busy, row = self._control(m, cmd)
        s0 = self._reads(m, cmd, busy, row, n_wr, st_rd, t)
        a, y = self._compute(m, cmd, s0, st_rd, t)
        y, ids = self._topk(m, cmd, a, y, t)
        words, sums = self._output(m, cmd, y, t)
        self._write(m, cmd, s0, n_wr, words, ids, st_rd, t)
        self._state(m, cmd, s0, a, sums, st_rd, st_wr, t)
        # o_idle: no row issued or in flight (the row valid bits of every stage clear)
        t_end = max(VECTOR_LANE_LATENCY, self._st_stage, self._merge_stage)
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

    def _reads(self, m: Module, cmd, busy, row, n_wr, st_rd, t):
        """Issue the reads of ``acc[src+i]``, ``acc[src2+i]`` and ``state[state+i]``;
        returns the row's stage-0 registers (valid, index).

        STATE_STORE reads no row; its state read is issued one cycle before the row's
        write (stage ``VECTOR_LANE_LATENCY - 1``; the row's index is the count of rows
        written, ``n_wr``, plus one if a row is written in this cycle), so that the
        words written need no delay registers."""
        is_op = self._is_op
        store = is_op(cmd, VecOp.STATE_STORE)
        reads_a = ~is_op(cmd, VecOp.STATE_INIT, VecOp.STATE_STORE)
        reads_b = is_op(cmd, *VECTOR_READS_SRC2) | (is_op(cmd, VecOp.REQUANT) & cmd.bias)
        uses_state = is_op(cmd, VecOp.ROWMAX, VecOp.EXP, VecOp.RESCALE, VecOp.NORM,
                           VecOp.ROWSUM, VecOp.STATE_MERGE)
        s0 = SimpleNamespace(v=Signal(name="v0"), i=Signal(SRAM_ADDR_BITS, name="i0"))
        m.d.sync += [s0.v.eq(busy), s0.i.eq(row)]
        t.put(s0.v, 0)
        v_store_rd = t.at(s0.v, VECTOR_LANE_LATENCY - 1)
        # the row in stage L-1 is n_wr, or n_wr + 1 while the row before it is written
        store_row = n_wr + t.at(s0.v, VECTOR_LANE_LATENCY)
        m.d.comb += [
            self.m_acc_rd_a.addr.eq(cmd.src + row), self.m_acc_rd_a.en.eq(busy & reads_a),
            self.m_acc_rd_b.addr.eq(cmd.src2 + row), self.m_acc_rd_b.en.eq(busy & reads_b),
            st_rd.addr.eq(Mux(store, cmd.state + store_row, cmd.state + row)),
            st_rd.en.eq(Mux(store, v_store_rd, busy & uses_state)),
        ]
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
                lane.i_beta.eq(st_rd.data[96:128]), lane.i_k.eq(st_rd.data[128:128 + _K_BITS]),
                lane.i_bscale.eq(cmd.bscale),
            ]
            a.append(t.put(lane.o_a, LaneCompute.A_LATENCY))
            y.append(t.put(lane.o_y, LaneCompute.Y_LATENCY))
        return a, y

    def _topk(self, m: Module, cmd, a, y, t):
        """TOPK: the ranks of the stage A values (:class:`RankNetwork`, ready long
        before the lanes' ``y``), delayed to the stage before ``y`` and decoded to a
        registered one-hot select (bit ``r L + j``: lane ``j`` has rank ``r``); output
        lane ``r`` gets ``y`` of the lane ranked ``r`` (the lanes' ``y`` of TOPK is
        ``a``, as COPY's). Returns the lanes' values for the output stage (``y`` for
        every other op) and the lane ids (8 bits per output lane), both in ``y``'s
        stage."""
        L = self.lanes
        is_topk = self._is_op(cmd, VecOp.TOPK)
        m.submodules.rank = rank = RankNetwork(L)
        # operand isolation: the network holds still during the other ops
        m.d.comb += rank.i_a.eq(Mux(is_topk, Cat(*t.align(*a)), 0))
        ranks = t.put(rank.o_rank, t.latest(*a) + RankNetwork.LATENCY)
        s = t.latest(*y)
        assert t.stage(ranks) < s, (t.stage(ranks), s)
        B = rank.bits
        rk = t.at(ranks, s - 1)
        sel = t.reg(t.put(Cat(*(rk[B * j:B * j + B] == r for r in range(L) for j in range(L))),
                          s - 1), name="topk_sel")
        ys = t.align(*y)
        out, ids = [], []
        for r in range(L):
            hit = sel[r * L:(r + 1) * L]
            v = functools.reduce(operator.or_, (Mux(hit[j], ys[j], 0) for j in range(L)))
            idx = functools.reduce(operator.or_, (Mux(hit[j], j, 0) for j in range(L)))
            out.append(t.put(Mux(is_topk, v, ys[r]), s))
            ids.append(t.put(Cat(idx, Const(0, 8))[:8], s))
        return out, ids

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

    def _write(self, m: Module, cmd, s0, n, words, ids, st_rd, t):
        """Drive ``m_acc_wr`` / ``m_act_wr`` from the lanes' word registers (lane j's
        low byte is activation code j; TOPK: the lane ids ``ids`` instead; STATE_STORE:
        ``[m, l, +0, ...]`` from the state read issued a cycle earlier); the address
        ``n`` counts the command's writes."""
        w = t.stage(words[0])
        assert w == VECTOR_LANE_LATENCY, w
        v = t.at(s0.v, w)
        with m.If(self.i_cmd.valid & self.i_cmd.ready):
            m.d.sync += n.eq(0)
        with m.Elif(v):
            m.d.sync += n.eq(n + 1)
        writes = self._is_op(cmd, *VECTOR_WRITES)
        L = self.lanes
        is_topk = self._is_op(cmd, VecOp.TOPK)
        act_codes = [Mux(is_topk, t.at(idx, w), wd[:8])
                     for wd, idx in zip(words[:self.act_lanes], ids)]
        act_codes += [Const(0, 8)] * (self.act_lanes - len(act_codes))
        m.d.comb += [
            self.m_acc_wr.en.eq(v & writes & ~cmd.dst_act),
            self.m_act_wr.en.eq(v & writes & cmd.dst_act),
            self.m_acc_wr.addr.eq(cmd.dst + n), self.m_act_wr.addr.eq(cmd.dst + n),
            self.m_acc_wr.data.eq(Mux(self._is_op(cmd, VecOp.STATE_STORE),
                                      Cat(st_rd.data[:64], Const(0, 32 * L))[:32 * L],
                                      Cat(*words))),
            self.m_act_wr.data.eq(Cat(*act_codes)),
        ]


    def _state(self, m: Module, cmd, s0, a, sums, st_rd, st_wr, t):
        """Row max, row sum and the softmax state update, written back to the state
        memory (each op in its own stage, see :meth:`_state_write`)."""
        is_merge = self._is_op(cmd, VecOp.STATE_MERGE)
        m1, l1, alpha1, beta1 = (t.put(st_rd.data[32 * f:32 * f + 32], 0) for f in range(4))
        # mb: the block's max (ROWMAX) or the stored partial's m_s (STATE_MERGE, lane 0)
        m.submodules.row_max = row_max = RowMax(self.lanes, pipelined=True)
        m.d.comb += row_max.i_a.eq(Cat(*t.align(*a)))
        rmax = t.put(row_max.o_result, t.latest(*a) + row_max.latency)
        s = t.stage(rmax)
        mb = t.put(Mux(is_merge, t.at(a[0], s), rmax), s)
        # m_new = max(m, mb)
        m.submodules.max_m = max_m = FMax()
        m.d.comb += [max_m.i_a.eq(t.at(m1, s)), max_m.i_b.eq(mb)]
        m_new = t.reg(t.put(max_m.o_result, s), name="m_new")
        # alpha' = exp(m_old - m_new), g = exp(mb - m_new) (1.0 if m_new = -inf)
        e_m = self._exp_diff(m, "m", m1, m_new, t)
        e_g = self._exp_diff(m, "g", mb, m_new, t)
        s = t.stage(e_m)
        m_new_inf = t.at(m_new, s) == NEG_INF_BITS
        alpha_new = t.put(Mux(m_new_inf, ONE_BITS, e_m), s)
        # ROWMAX: k = clamp(126 - E(g), 0, K_MAX) with bscale (else 0), beta = 2**-k;
        # STATE_MERGE: beta = the merge factor of m_s, k = 0
        k_new = t.put(Mux(cmd.bscale & ~is_merge, _block_scale_k(e_g), 0), s)
        beta_new = t.put(Mux(is_merge, Mux(m_new_inf, ONE_BITS, e_g),
                             Cat(Const(0, 23), (127 - k_new)[:8])), s)
        l_merge = self._merge_l(m, l1, a[1] if self.lanes > 1 else a[0],
                                alpha_new, beta_new, t)
        l_new = self._exp_l(m, cmd, l1, alpha1, beta1, sums, t)
        # STATE_LOAD: alpha = a[k_base] (k_base < L: models.tensor_cmd.check)
        s = t.latest(*a)
        lane_k = Signal(32, name="a_k_base")
        a_s = t.align(*a)
        with m.Switch(cmd.k_base):
            for j, v in enumerate(a_s):
                with m.Case(j):
                    m.d.comb += lane_k.eq(v)
            with m.Default():
                m.d.comb += lane_k.eq(0)
        alpha_ld = t.reg(t.put(lane_k, s), name="alpha_ld")
        self._state_write(m, cmd, s0, st_wr, t, dict(
            m_new=m_new, alpha=alpha_new, beta=beta_new, k=k_new, l_new=l_new,
            l_merge=l_merge, alpha_ld=alpha_ld))

    @staticmethod
    def _exp_diff(m: Module, name: str, x, m_new, t):
        """``exp_approx(fadd(x, -m_new))`` (FP32Adder, register, ExpApprox, register)."""
        m.submodules[f"add_{name}"] = add = FP32Adder(_ADD)
        s = t.stage(m_new)
        m.d.comb += [add.i_a.eq(t.at(x, s)), add.i_b.eq(m_new ^ SIGN_BIT)]
        d = t.reg(t.put(add.o_result, s + _ADD), name=f"d{name}")
        m.submodules[f"exp_{name}"] = ex = ExpApprox(ExpApprox.PIPELINED)
        m.d.comb += ex.i_a.eq(d)
        return t.reg(t.put(ex.o_result, t.stage(d) + ex.stages), name=f"exp_{name}")

    @staticmethod
    def _mul(m: Module, name: str, x, y, t):
        """``fmul(x, y)`` (FP32Multiplier, register), tagged with its stage."""
        m.submodules[name] = mul = FP32Multiplier(_MUL)
        s = t.latest(x, y)
        m.d.comb += [mul.i_a.eq(t.at(x, s)), mul.i_b.eq(t.at(y, s))]
        return t.reg(t.put(mul.o_product, s + _MUL), name=name)

    @staticmethod
    def _add(m: Module, name: str, x, y, t):
        """``fadd(x, y)`` (FP32Adder, register), tagged with its stage."""
        m.submodules[name] = add = FP32Adder(_ADD)
        s = t.latest(x, y)
        m.d.comb += [add.i_a.eq(t.at(x, s)), add.i_b.eq(t.at(y, s))]
        return t.reg(t.put(add.o_result, s + _ADD), name=name)

    def _merge_l(self, m: Module, l1, l_s, alpha_new, beta_new, t):
        """STATE_MERGE: ``l = fadd(fmul(l, alpha), fmul(l_s, beta))`` (new alpha, beta)."""
        la = self._mul(m, "mul_l_merge", l1, alpha_new, t)
        lb = self._mul(m, "mul_ls_merge", l_s, beta_new, t)
        return self._add(m, "add_l_merge", la, lb, t)

    def _exp_l(self, m: Module, cmd, l1, alpha1, beta1, sums, t):
        """EXP / ROWSUM: ``l = fadd(fmul(l, alpha), s)`` with ``s`` the row sum (EXP
        with bscale: ``fmul(s, beta)``)."""
        l_alpha = self._mul(m, "l_alpha", l1, alpha1, t)
        m.submodules.row_sum = row_sum = RowSum(self.lanes, pipelined=True)
        m.d.comb += row_sum.i_a.eq(Cat(*t.align(*sums)))
        rsum = t.put(row_sum.o_result, t.latest(*sums) + row_sum.latency)
        s_beta = self._mul(m, "sum_beta", rsum, beta1, t)
        s = t.stage(s_beta)
        scaled = cmd.bscale & self._is_op(cmd, VecOp.EXP)
        term = t.put(Mux(scaled, s_beta, t.at(rsum, s)), s)
        return self._add(m, "l_new", l_alpha, term, t)

    def _state_write(self, m: Module, cmd, s0, st_wr, t, f: dict):
        """Write the fields each op changes (32-bit write granularity) as soon as they
        are ready: ROWMAX m, alpha, beta, k; STATE_MERGE all five (when its ``l`` is
        ready); EXP / ROWSUM l (the last stage); STATE_INIT all five in stage 0;
        STATE_LOAD alpha the stage after stage A.
        Commands do not overlap, so the ops' different stages never collide."""
        st = self._st_stage = t.stage(f["l_new"])
        sm = self._merge_stage = t.stage(f["l_merge"])
        sa = t.stage(f["alpha"])
        sl = t.stage(f["alpha_ld"])
        v_max, v_merge, v_l, v_init, v_ld = (t.at(s0.v, k) for k in (sa, sm, st, 0, sl))
        k_max = Cat(t.at(f["k"], sa), Const(0, 32 - _K_BITS))
        max_word = Cat(t.at(f["m_new"], sa), Const(0, 32), f["alpha"], f["beta"], k_max)
        merge_word = Cat(t.at(f["m_new"], sm), f["l_merge"], t.at(f["alpha"], sm),
                         t.at(f["beta"], sm), Const(0, 32))
        l_word = Cat(Const(0, 32), f["l_new"], Const(0, 96))
        ld_word = Cat(Const(0, 64), f["alpha_ld"], Const(0, 64))
        v = Signal(name="v_state")
        n = Signal(SRAM_ADDR_BITS, name="n_state")
        with m.If(self.i_cmd.valid & self.i_cmd.ready):
            m.d.sync += n.eq(0)
        with m.Elif(v):
            m.d.sync += n.eq(n + 1)
        m.d.comb += st_wr.addr.eq(cmd.state + n)
        cases = [((VecOp.ROWMAX,), v_max, max_word, _EN_M | _EN_ALPHA | _EN_BETA | _EN_K),
                 ((VecOp.STATE_MERGE,), v_merge, merge_word, 0b11111),
                 ((VecOp.EXP, VecOp.ROWSUM), v_l, l_word, _EN_L),
                 ((VecOp.STATE_INIT,), v_init, _STATE_INIT_WORD, 0b11111),
                 ((VecOp.STATE_LOAD,), v_ld, ld_word, _EN_ALPHA)]
        with m.Switch(cmd.op):
            for ops, valid, word, en in cases:
                with m.Case(*ops):
                    m.d.comb += [v.eq(valid), st_wr.data.eq(word),
                                 st_wr.en.eq(Mux(valid, en, 0))]
            with m.Default():
                m.d.comb += [v.eq(0), st_wr.en.eq(0), st_wr.data.eq(0)]


def _block_scale_k(g):
    """``clamp(126 - E(g), 0, K_MAX)``, ``E`` the biased exponent field of ``g``'s bits
    (``models.vector.block_scale_k``)."""
    e = g[23:31]
    return Mux(e >= 126, 0, Mux(e <= 126 - K_MAX, K_MAX, (126 - e)[:_K_BITS]))
