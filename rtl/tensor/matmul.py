# amaranth: UnusedElaboratable=no
"""Matmul controller of the tensor core: weight feeder, activation feeder, result writer."""
import math

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from models.config import JalapenoConfig
from models.tensor_core import ACC_ADD_STAGES, FEEDER_QUEUE_DEPTH, acc_add_stages
from rtl.formats import SRAM_ADDR_BITS, tensor_cmd_layout
from rtl.fp.fp32_add import FP32Adder
from rtl.lib.shared import shared_instance
from rtl.lib.stream import Queue
from rtl.systolic.array import SystolicArray

__all__ = ["MatmulController", "QUEUE_DEPTH", "ACC_ADD_STAGES", "result_queue_depth"]

#: Commands the weight and activation feeders hold (the dispatcher runs this far ahead;
#: the cycle model ``models.tensor_core.program_schedule`` counts it).
QUEUE_DEPTH = FEEDER_QUEUE_DEPTH



def result_queue_depth(config: JalapenoConfig) -> int:
    """Commands between dispatch and their last result row: the feeders' queues, the
    one streaming, and as many as the array's latency holds at one tile per R cycles."""
    return QUEUE_DEPTH + 2 + math.ceil((config.systolic.latency + 5) / config.systolic.rows)


_W_INFO = data.StructLayout({"src2": SRAM_ADDR_BITS, "fp8": 1, "fmt_a": 1, "fmt_w": 1})
_A_INFO = data.StructLayout({"src": SRAM_ADDR_BITS, "count": SRAM_ADDR_BITS})
_R_INFO = data.StructLayout({"dst": SRAM_ADDR_BITS, "count": SRAM_ADDR_BITS, "accumulate": 1,
                             "fp8": 1})


class MatmulController(wiring.Component):
    """Runs legal MATMUL commands on a :class:`rtl.systolic.array.SystolicArray`.

    ``acc[dst + i] (+)= act[src + i] @ W`` for ``i < count``, W = weight rows
    ``src2 .. src2 + R - 1``. Three decoupled engines, each with a queue of per-command
    information filled by the dispatcher (``i_cmd``) in one cycle:

    * **weight feeder** (queue of :data:`QUEUE_DEPTH`): reads the R weight rows into
      ``i_weight``, row 0 carrying the tile mode (INT8, or FP8 with ``fmt_a``/``fmt_w``).
      The array holds the next tile's rows in its shadow registers, so the feeder runs
      one command ahead: the next tile's weights load while the current tile streams.
    * **activation feeder** (queue of :data:`QUEUE_DEPTH`): reads ``count`` rows from
      ``src`` into ``i_act`` with ``first``/``last``.
    * **result writer** (queue of :func:`result_queue_depth`): takes one result row per
      cycle, reads ``acc[dst + i]`` in that cycle and writes the new row
      ``1 + P`` cycles later (P = ``models.tensor_core.acc_add_stages``: 2 with the FP8
      datapath, 0 without): INT32 wrap-around add, binary32 ``fp32_add(old, partial)``
      (one :class:`rtl.fp.fp32_add.FP32Adder` per lane with ``stages=P``, FP8 tiles), or
      the partial itself (overwrite). The accumulator read port must be transparent to
      ``m_acc_wr``: a row written in the cycle it is read again is then read with its
      new value. Read-after-write hazard: an accumulating row whose accumulator row is
      still in the add pipeline (read 1 .. P cycles earlier; possible only when tiles
      accumulating into overlapping, shifted rows run back to back, e.g. ``dst`` of one
      = ``dst + count - 1`` of the previous) is refused (``o_result.ready`` low) until
      that row has been written; the array holds it in its skid register.
      ``models.tensor_core.matmul_cycles`` counts these stalls.

    The feeders use the SRAM read register as their pipeline stage: a read is issued
    only when the stage is empty or being emptied, and a stalled stage holds its read
    port (``en`` low), so no skid buffer is needed and every stream keeps its data
    stable under backpressure.

    Throughput: one activation vector per cycle; tile period max(count, R), so
    consecutive commands with count >= R keep the array busy with no bubble.
    Latency from a command's dispatch to its last row written: 2 + R (weights) + count
    + ``config.systolic.latency`` (array) + 1 + P cycles when the array is free.

    Golden model: ``models.tensor_core.TensorCoreModel`` (matmul part).

    Parameters
    ----------
    config : JalapenoConfig
        ``systolic``: the array's shape and FP8 option.

    Members
    -------
    i_cmd : In(stream.Signature(tensor_cmd_layout()))
        Legal MATMUL commands (the dispatcher checked them).
    m_act_rd, m_wgt_rd, m_acc_rd : In(memory.ReadPort.Signature(addr_width=SRAM_ADDR_BITS, ...))
        Activation (R x 8 bits), weight (C x 8) and accumulator (C x 32) read ports
        (``en`` is always driven).
    m_acc_wr : In(memory.WritePort.Signature(addr_width=SRAM_ADDR_BITS, shape=C x 32))
    o_busy : Out(1)
        A command is queued or has rows not yet written.
    o_act_fire : Out(1)
        The array accepted an activation vector this cycle.
    o_done : Out(1)
        A command wrote its last row this cycle.
    """

    def __init__(self, config: JalapenoConfig):
        if not isinstance(config, JalapenoConfig):
            raise TypeError(f"MatmulController needs a JalapenoConfig, got {config!r}")
        self._config = config
        sa = config.systolic
        self.array = SystolicArray(sa)

        def rd(bits):
            return In(memory.ReadPort.Signature(addr_width=SRAM_ADDR_BITS, shape=bits))

        super().__init__({
            "i_cmd": In(stream.Signature(tensor_cmd_layout())),
            "m_act_rd": rd(sa.rows * 8),
            "m_wgt_rd": rd(sa.cols * 8),
            "m_acc_rd": rd(sa.cols * 32),
            "m_acc_wr": In(memory.WritePort.Signature(addr_width=SRAM_ADDR_BITS,
                                                      shape=sa.cols * 32)),
            "o_busy": Out(1),
            "o_act_fire": Out(1),
            "o_done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        # one Verilog module per array configuration (rtl.lib.shared)
        arr = shared_instance(m, self.array, "array", key=self._config.systolic)
        m.submodules.w_q = w_q = Queue(_W_INFO, QUEUE_DEPTH)
        m.submodules.a_q = a_q = Queue(_A_INFO, QUEUE_DEPTH)
        m.submodules.r_q = r_q = Queue(_R_INFO, result_queue_depth(self._config))
        self._dispatch(m, w_q, a_q, r_q)
        w_v = self._weight_feeder(m, arr, w_q.o)
        a_v = self._act_feeder(m, arr, a_q.o)
        s1_v = self._result_writer(m, arr, r_q.o)
        m.d.comb += self.o_busy.eq(w_q.o.valid | a_q.o.valid | r_q.o.valid | s1_v | w_v | a_v)
        return m

    def _dispatch(self, m, w_q, a_q, r_q):
        """One command into the three queues at once."""
        cmd = self.i_cmd.payload
        room = w_q.i.ready & a_q.i.ready & r_q.i.ready
        push = self.i_cmd.valid & room
        m.d.comb += [
            self.i_cmd.ready.eq(room),
            w_q.i.valid.eq(push), a_q.i.valid.eq(push), r_q.i.valid.eq(push),
            w_q.i.payload.src2.eq(cmd.src2), w_q.i.payload.fp8.eq(cmd.fp8),
            w_q.i.payload.fmt_a.eq(cmd.fmt_a), w_q.i.payload.fmt_w.eq(cmd.fmt_w),
            a_q.i.payload.src.eq(cmd.src), a_q.i.payload.count.eq(cmd.count),
            r_q.i.payload.dst.eq(cmd.dst), r_q.i.payload.count.eq(cmd.count),
            r_q.i.payload.accumulate.eq(cmd.accumulate), r_q.i.payload.fp8.eq(cmd.fp8),
        ]

    def _weight_feeder(self, m, arr, wq):
        """R weight rows per command into ``i_weight``; returns the stage's valid."""
        R = self._config.systolic.rows
        w_row = Signal(range(max(R, 2)))
        w_v = Signal()                      # the read register holds a row for i_weight
        w_mode = Signal(3)                  # tile_mode_layout bits: mode, fmt_a, fmt_w
        w_adv = ~w_v | arr.i_weight.ready
        w_issue = w_adv & wq.valid
        w_last = w_row == R - 1
        m.d.comb += [
            self.m_wgt_rd.addr.eq(wq.payload.src2 + w_row),
            self.m_wgt_rd.en.eq(w_issue),
            wq.ready.eq(w_issue & w_last),
            arr.i_weight.valid.eq(w_v),
            arr.i_weight.payload.as_value().eq(Cat(self.m_wgt_rd.data, w_mode)),
        ]
        with m.If(w_adv):
            m.d.sync += [
                w_v.eq(w_issue),
                # only row 0's mode matters; other rows carry zeros
                w_mode.eq(Mux(w_row == 0, Cat(wq.payload.fp8, wq.payload.fmt_a,
                                              wq.payload.fmt_w), 0)),
            ]
        with m.If(w_issue):
            m.d.sync += w_row.eq(Mux(w_last, 0, w_row + 1))
        return w_v

    def _act_feeder(self, m, arr, aq):
        """``count`` activation rows per command into ``i_act``; returns the stage's valid."""
        a_i = Signal(SRAM_ADDR_BITS)
        a_v = Signal()
        a_flags = Signal(2)                 # first, last
        a_adv = ~a_v | arr.i_act.ready
        a_issue = a_adv & aq.valid
        a_last = a_i == aq.payload.count - 1
        m.d.comb += [
            self.m_act_rd.addr.eq(aq.payload.src + a_i),
            self.m_act_rd.en.eq(a_issue),
            aq.ready.eq(a_issue & a_last),
            arr.i_act.valid.eq(a_v),
            arr.i_act.payload.as_value().eq(Cat(self.m_act_rd.data, a_flags)),
            self.o_act_fire.eq(arr.i_act.valid & arr.i_act.ready),
        ]
        with m.If(a_adv):
            m.d.sync += [a_v.eq(a_issue), a_flags.eq(Cat(a_i == 0, a_last))]
        with m.If(a_issue):
            m.d.sync += a_i.eq(Mux(a_last, 0, a_i + 1))
        return a_v

    def _result_writer(self, m, arr, rq):
        """Read the accumulator row in the result's cycle; the sum is written
        1 + :data:`ACC_ADD_STAGES` cycles later. Returns "a row is in flight"."""
        sa = self._config.systolic
        C = sa.cols
        P = acc_add_stages(self._config)
        res = arr.o_result
        r_i = Signal(SRAM_ADDR_BITS)
        r_last = r_i == rq.payload.count - 1
        rd_addr = Signal(SRAM_ADDR_BITS)
        m.d.comb += rd_addr.eq(rq.payload.dst + r_i)
        # In-flight rows (read, not yet written): stage 1 .. P. Stage k is the
        # row read k cycles ago; stage P + 1 writes (the read port is transparent
        # to it). An accumulating row must not read a row still in flight.
        fl = [dict(v=Signal(name=f"s{k}_v"), last=Signal(name=f"s{k}_last"),
                   addr=Signal(SRAM_ADDR_BITS, name=f"s{k}_addr"))
              for k in range(1, P + 2)]
        hazard = Signal()
        if P:
            m.d.comb += hazard.eq(rq.payload.accumulate & Cat(
                *[st["v"] & (st["addr"] == rd_addr) for st in fl[:P]]).any())
        got = Signal()
        m.d.comb += got.eq(res.valid & ~hazard)
        s1_acc = Signal()
        s1_fp8 = Signal()
        s1_part = Signal(C * 32)
        m.d.comb += [
            res.ready.eq(~hazard),
            self.m_acc_rd.addr.eq(rd_addr),
            self.m_acc_rd.en.eq(got),
            rq.ready.eq(got & r_last),
        ]
        with m.If(got):
            m.d.sync += r_i.eq(Mux(r_last, 0, r_i + 1))
        m.d.sync += [
            fl[0]["v"].eq(got),
            fl[0]["last"].eq(got & r_last),
            fl[0]["addr"].eq(rd_addr),
            s1_acc.eq(rq.payload.accumulate),
            s1_fp8.eq(rq.payload.fp8),
        ]
        for a, b in zip(fl, fl[1:]):
            m.d.sync += [b[k].eq(a[k]) for k in a]
        with m.If(got):
            m.d.sync += s1_part.eq(res.payload.data.as_value())

        old = self.m_acc_rd.data
        # INT32 sums and overwrites (``pre``) wait P cycles for the binary32 adds.
        pre = Signal(C * 32)
        fadd = Signal()
        m.d.comb += fadd.eq(fl[0]["v"] & s1_acc & s1_fp8)
        pre_out, fadd_d = pre, fadd
        for k in range(P):
            pre_d, fd = Signal(C * 32, name=f"pre_d{k + 1}"), Signal(name=f"fadd_d{k + 1}")
            m.d.sync += [pre_d.eq(pre_out), fd.eq(fadd_d)]
            pre_out, fadd_d = pre_d, fd
        new = Signal(C * 32)
        for c in range(C):
            lane = slice(32 * c, 32 * c + 32)
            isum = Signal(32, name=f"isum_{c}")
            m.d.comb += [isum.eq(old[lane] + s1_part[lane]),
                         pre[lane].eq(Mux(s1_acc, isum, s1_part[lane]))]
            if sa.fp8:
                add = FP32Adder(P)
                m.submodules[f"fadd_{c}"] = add
                # operand isolation when no binary32 add
                m.d.comb += [add.i_a.eq(Mux(fadd, old[lane], 0)),
                             add.i_b.eq(Mux(fadd, s1_part[lane], 0)),
                             new[lane].eq(Mux(fadd_d, add.o_result, pre_out[lane]))]
            else:
                m.d.comb += new[lane].eq(pre_out[lane])
        wr = fl[P]
        m.d.comb += [
            self.m_acc_wr.en.eq(wr["v"]),
            self.m_acc_wr.addr.eq(wr["addr"]),
            self.m_acc_wr.data.eq(new),
            self.o_done.eq(wr["v"] & wr["last"]),
        ]
        return Cat(*[st["v"] for st in fl]).any()
