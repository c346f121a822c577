"""Tensor core: systolic array + activation/weight/accumulator SRAMs + command controller."""
from amaranth import Module, Mux, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from models.config import JalapenoConfig
from models.tensor_cmd import Unit
from rtl.tensor.check import ERR_CODE_BITS, CmdCheck
from rtl.formats import tensor_cmd_layout
from rtl.tensor.fifo import ADDR_BITS, StreamFifo
from rtl.tensor.matmul import MatmulController

__all__ = ["TensorCore", "MemSel", "host_data_bits", "host_wr_layout", "host_rd_layout",
           "host_rdata_layout", "perf_layout", "RD_BUFFER"]

#: Read results the host port buffers (reads are accepted only while there is room).
RD_BUFFER = 3


class MemSel(enum.Enum, shape=2):
    """Which SRAM a host access addresses."""

    ACT = 0
    WEIGHT = 1
    ACC = 2


def host_data_bits(config: JalapenoConfig) -> int:
    """Width of the host data bus: an accumulator row (C x 32) or an activation row
    (R x 8), whichever is wider; narrower rows use the low bits."""
    return max(config.systolic.cols * 32, config.systolic.rows * 8)


def host_wr_layout(config: JalapenoConfig) -> data.StructLayout:
    """Host write: ``data`` (low bits) is stored in row ``addr`` of SRAM ``mem``."""
    return data.StructLayout({"mem": MemSel, "addr": ADDR_BITS, "data": host_data_bits(config)})


def host_rd_layout() -> data.StructLayout:
    """Host read request: row ``addr`` of SRAM ``mem``."""
    return data.StructLayout({"mem": MemSel, "addr": ADDR_BITS})


def host_rdata_layout(config: JalapenoConfig) -> data.StructLayout:
    """Host read response: the row, zero-extended."""
    return data.StructLayout({"data": host_data_bits(config)})


def perf_layout() -> data.StructLayout:
    """Performance counters (32-bit, wrap around, cleared by reset).

    ``busy``: cycles not idle; ``act``: cycles the array accepted an activation vector
    (useful MACs = R x C x ``act``); ``vector``: cycles the vector unit was busy;
    ``cmds``: commands completed (a MATMUL when its last row is written, a VECTOR when
    the vector unit returns to idle after it); ``discarded``: commands dropped (illegal, or
    after an error).
    """
    return data.StructLayout({"busy": 32, "act": 32, "vector": 32, "cmds": 32,
                              "discarded": 32})


def _vector_unit(config: JalapenoConfig):
    """The vector unit (``rtl.vector.unit.VectorUnit``)."""
    from rtl.vector.unit import VectorUnit
    return VectorUnit(config)


class TensorCore(wiring.Component):
    """One tensor core: array, SRAMs, command queue, dispatcher, matmul and vector units.

    Commands (``i_cmd``, :class:`models.tensor_cmd.TensorCmd`) enter a FIFO of
    ``config.tensor.cmd_depth``. The dispatcher checks the command at its head with the
    rules of ``models.tensor_cmd.check`` (:class:`rtl.tensor.check.CmdCheck`) and sends
    legal MATMULs to the :class:`rtl.tensor.matmul.MatmulController`, legal VECTORs to
    the vector unit. Ordering: MATMULs pipeline freely behind each other; a VECTOR waits
    until every earlier MATMUL has written its last row; a MATMUL waits until the vector
    unit is idle (a fence at every switch of unit). An illegal command latches ``error``
    and ``err_code`` (first error wins) and is discarded, and so is every later command
    that reaches the dispatcher until ``clear_err`` pulses; the queue keeps draining at
    one command per cycle, so ``i_cmd`` never blocks for long and nothing hangs.

    SRAMs (``amaranth.lib.memory``, initialised to zero, one-cycle reads):

    * activation: ``act_rows`` x R*8 bits, lane r = bits [8r+7 : 8r];
    * weight: ``weight_rows`` x C*8 bits, lane c = bits [8c+7 : 8c];
    * accumulator: ``acc_rows`` x C*32 bits (INT32 or binary32), lane c = bits
      [32c+31 : 32c]; two read ports (matmul read-modify-write / vector port A / host,
      and vector port B), both transparent to its one write port.

    Host port (testbenches, later the DMA): ``i_wr`` writes a row, ``i_rd`` reads one,
    answered in order on ``o_rd``. Both are served only while ``idle`` (ready low
    otherwise), so host traffic never races with commands: wait for ``idle`` before
    reading results, and send commands only after the writes they depend on were
    accepted. Addresses past the SRAM's end (and ``mem`` = 3) are ignored by writes and
    read as zero.

    Latency and throughput: see :class:`rtl.tensor.matmul.MatmulController`; a sequence
    of MATMULs sent back to back takes ``models.tensor_core.matmul_cycles`` cycles from
    the first command accepted to ``idle``.

    Golden model: ``models.tensor_core.TensorCoreModel`` (bit-exact SRAM contents and
    error codes).

    Parameters
    ----------
    config : JalapenoConfig
        ``systolic`` (array shape, FP8) and ``tensor`` (SRAM depths, queue depth).
    vector_unit : callable, optional
        ``factory(config)`` of the vector unit (default ``rtl.vector.unit.VectorUnit``).

    Members
    -------
    i_cmd : In(stream.Signature(tensor_cmd_layout()))
    i_wr : In(stream.Signature(host_wr_layout(config)))
    i_rd : In(stream.Signature(host_rd_layout()))
    o_rd : Out(stream.Signature(host_rdata_layout(config)))
    idle : Out(1)
        No command queued or executing, every result written.
    error : Out(1)
        Sticky: an illegal command was seen (cleared by ``clear_err``).
    err_code : Out(4)
        The ``models.tensor_cmd.ErrCode`` of the first illegal command (0 if none).
    clear_err : In(1)
        Pulse: clear ``error``/``err_code``; the dispatcher pauses in that cycle.
    perf : Out(perf_layout())
    """

    def __init__(self, config: JalapenoConfig, *, vector_unit=None):
        if not isinstance(config, JalapenoConfig):
            raise TypeError(f"TensorCore needs a JalapenoConfig, got {config!r}")
        self._config = config
        self.matmul = MatmulController(config)
        self.vector = (vector_unit or _vector_unit)(config)
        super().__init__({
            "i_cmd": In(stream.Signature(tensor_cmd_layout())),
            "i_wr": In(stream.Signature(host_wr_layout(config))),
            "i_rd": In(stream.Signature(host_rd_layout())),
            "o_rd": Out(stream.Signature(host_rdata_layout(config))),
            "idle": Out(1),
            "error": Out(1),
            "err_code": Out(ERR_CODE_BITS),
            "clear_err": In(1),
            "perf": Out(perf_layout()),
        })

    @property
    def config(self) -> JalapenoConfig:
        return self._config

    def verilog_submodules(self) -> dict[str, wiring.Component]:
        """Shared modules (the array's PEs) written once next to the core's Verilog."""
        subs = dict(self.matmul.array.verilog_submodules())
        extra = getattr(self.vector, "verilog_submodules", None)
        if extra is not None:
            subs.update(extra())
        return subs

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        tc, sa = cfg.tensor, cfg.systolic
        R, C = sa.rows, sa.cols
        m.submodules.matmul = mm = self.matmul
        m.submodules.vector = vu = self.vector
        m.submodules.cmd_q = cmd_q = StreamFifo(tensor_cmd_layout(), tc.cmd_depth)
        m.submodules.check = chk = CmdCheck(cfg)

        # --- SRAMs ------------------------------------------------------------------------
        m.submodules.act_mem = act_mem = Memory(shape=R * 8, depth=tc.act_rows, init=[])
        m.submodules.wgt_mem = wgt_mem = Memory(shape=C * 8, depth=tc.weight_rows, init=[])
        m.submodules.acc_mem = acc_mem = Memory(shape=C * 32, depth=tc.acc_rows, init=[])
        act_w, act_r = act_mem.write_port(), act_mem.read_port()
        wgt_w, wgt_r = wgt_mem.write_port(), wgt_mem.read_port()
        acc_w = acc_mem.write_port()
        acc_ra = acc_mem.read_port(transparent_for=(acc_w,))
        acc_rb = acc_mem.read_port(transparent_for=(acc_w,))

        # --- dispatcher ---------------------------------------------------------------------
        wiring.connect(m, wiring.flipped(self.i_cmd), cmd_q.i)
        head = cmd_q.o
        error = Signal()
        err_code = Signal(ERR_CODE_BITS)
        vec_sent = Signal()      # a VECTOR was handed over last cycle (its idle may lag)
        vu_quiet = vu.idle & ~vec_sent
        legal = chk.code == 0
        is_mm = head.payload.unit == int(Unit.MATMUL)
        go = head.valid & ~self.clear_err & ~error & legal
        discard = head.valid & ~self.clear_err & (error | ~legal)
        m.d.comb += [
            chk.cmd.eq(head.payload),
            mm.i_cmd.payload.eq(head.payload),
            mm.i_cmd.valid.eq(go & is_mm & vu_quiet),
            vu.i_cmd.payload.eq(head.payload),
            vu.i_cmd.valid.eq(go & ~is_mm & ~mm.busy),
            head.ready.eq(discard | (mm.i_cmd.valid & mm.i_cmd.ready)
                          | (vu.i_cmd.valid & vu.i_cmd.ready)),
            self.error.eq(error),
            self.err_code.eq(err_code),
        ]
        vec_fire = vu.i_cmd.valid & vu.i_cmd.ready
        m.d.sync += vec_sent.eq(vec_fire)
        # the vector unit takes one command at a time: it completes when idle returns
        vu_idle_q = Signal(init=1)
        m.d.sync += vu_idle_q.eq(vu.idle)
        vec_done = vu.idle & ~vu_idle_q
        with m.If(self.clear_err):
            m.d.sync += [error.eq(0), err_code.eq(0)]
        with m.Elif(head.valid & ~error & ~legal):
            m.d.sync += [error.eq(1), err_code.eq(chk.code)]
        idle = ~head.valid & ~mm.busy & vu_quiet
        m.d.comb += self.idle.eq(idle)

        # --- host port (only while idle) ----------------------------------------------------
        wr = self.i_wr.payload
        m.d.comb += self.i_wr.ready.eq(idle)
        wr_fire = self.i_wr.valid & idle
        host_act_w = wr_fire & (wr.mem == MemSel.ACT) & (wr.addr < tc.act_rows)
        host_wgt_w = wr_fire & (wr.mem == MemSel.WEIGHT) & (wr.addr < tc.weight_rows)
        host_acc_w = wr_fire & (wr.mem == MemSel.ACC) & (wr.addr < tc.acc_rows)

        m.submodules.rd_q = rd_q = StreamFifo(host_rdata_layout(cfg), RD_BUFFER)
        wiring.connect(m, rd_q.o, wiring.flipped(self.o_rd))
        rq = self.i_rd.payload
        rd_infl = Signal()
        rd_sel = Signal(MemSel)
        rd_zero = Signal()
        m.d.comb += self.i_rd.ready.eq(idle & (rd_q.level + rd_infl < RD_BUFFER))
        rd_fire = self.i_rd.valid & self.i_rd.ready
        host_act_r = rd_fire & (rq.mem == MemSel.ACT)
        host_wgt_r = rd_fire & (rq.mem == MemSel.WEIGHT)
        host_acc_r = rd_fire & (rq.mem == MemSel.ACC)
        in_range = Mux(rq.mem == MemSel.ACT, rq.addr < tc.act_rows,
                       Mux(rq.mem == MemSel.WEIGHT, rq.addr < tc.weight_rows,
                           Mux(rq.mem == MemSel.ACC, rq.addr < tc.acc_rows, 0)))
        m.d.sync += rd_infl.eq(rd_fire)
        with m.If(rd_fire):
            m.d.sync += [rd_sel.eq(rq.mem), rd_zero.eq(~in_range)]
        rdata = Mux(rd_sel == MemSel.ACT, act_r.data,
                    Mux(rd_sel == MemSel.WEIGHT, wgt_r.data, acc_ra.data))
        m.d.comb += [rd_q.i.valid.eq(rd_infl),
                     rd_q.i.payload.data.eq(Mux(rd_zero, 0, rdata))]

        # --- SRAM port muxes (owners never overlap: host only when idle, vector unit
        # and matmul controller separated by the dispatcher's fences) --------------------
        m.d.comb += [
            act_r.addr.eq(Mux(host_act_r, rq.addr, mm.act_rd.addr)),
            act_r.en.eq(host_act_r | mm.act_rd.en),
            mm.act_rd.data.eq(act_r.data),
            wgt_r.addr.eq(Mux(host_wgt_r, rq.addr, mm.wgt_rd.addr)),
            wgt_r.en.eq(host_wgt_r | mm.wgt_rd.en),
            mm.wgt_rd.data.eq(wgt_r.data),
            wgt_w.addr.eq(wr.addr), wgt_w.data.eq(wr.data), wgt_w.en.eq(host_wgt_w),
            act_w.addr.eq(Mux(vu.act_wr.en, vu.act_wr.addr, wr.addr)),
            act_w.data.eq(Mux(vu.act_wr.en, vu.act_wr.data, wr.data)),
            act_w.en.eq(vu.act_wr.en | host_act_w),
            acc_ra.addr.eq(Mux(vu.acc_rd_a.en, vu.acc_rd_a.addr,
                               Mux(host_acc_r, rq.addr, mm.acc_rd.addr))),
            acc_ra.en.eq(vu.acc_rd_a.en | host_acc_r | mm.acc_rd.en),
            mm.acc_rd.data.eq(acc_ra.data),
            vu.acc_rd_a.data.eq(acc_ra.data),
            acc_rb.addr.eq(vu.acc_rd_b.addr),
            acc_rb.en.eq(vu.acc_rd_b.en),
            vu.acc_rd_b.data.eq(acc_rb.data),
            acc_w.addr.eq(Mux(vu.acc_wr.en, vu.acc_wr.addr,
                              Mux(mm.acc_wr.en, mm.acc_wr.addr, wr.addr))),
            acc_w.data.eq(Mux(vu.acc_wr.en, vu.acc_wr.data,
                              Mux(mm.acc_wr.en, mm.acc_wr.data, wr.data))),
            acc_w.en.eq(vu.acc_wr.en | mm.acc_wr.en | host_acc_w),
        ]

        # --- performance counters -----------------------------------------------------------
        p = self.perf
        m.d.sync += [
            p.busy.eq(p.busy + ~idle),
            p.act.eq(p.act + mm.act_fire),
            p.vector.eq(p.vector + ~vu.idle),
            p.cmds.eq(p.cmds + mm.done + vec_done),
            p.discarded.eq(p.discarded + discard),
        ]
        return m

