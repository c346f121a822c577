"""Tensor core: systolic array + activation/weight/accumulator SRAMs + command controller."""
from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import data, enum, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from models.config import JalapenoConfig
from models.tensor_cmd import ERR_CODE_BITS, Unit
from rtl.formats import SRAM_ADDR_BITS, tensor_cmd_layout
from rtl.lib.stream import Queue
from rtl.tensor.check import CmdCheck
from rtl.tensor.matmul import MatmulController
from rtl.vector.unit import VectorUnit

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
    return data.StructLayout({"mem": MemSel, "addr": SRAM_ADDR_BITS,
                              "data": host_data_bits(config)})


def host_rd_layout() -> data.StructLayout:
    """Host read request: row ``addr`` of SRAM ``mem``."""
    return data.StructLayout({"mem": MemSel, "addr": SRAM_ADDR_BITS})


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


def _initiator(signature: wiring.Signature, name: str):
    """An interface on the initiator side of an SRAM port signature (what a block's
    ``m_*`` member is), for the host port's accesses."""
    return signature.flip().create(path=(name,))


def _share_read(m: Module, port: memory.ReadPort, clients: list) -> None:
    """Memory read ``port`` shared by initiator ports ``clients``, highest priority first
    (their enables never overlap): the first enabled client's address (the last client's
    when none is), any client's enable; every client sees the data.

    Not ``wiring.connect``, even for one client: the clients carry
    :data:`rtl.formats.SRAM_ADDR_BITS`-bit addresses and the memory uses the low bits.
    """
    addr = clients[-1].addr
    for c in reversed(clients[:-1]):
        addr = Mux(c.en, c.addr, addr)
    m.d.comb += [port.addr.eq(addr), port.en.eq(Cat(*[c.en for c in clients]).any())]
    m.d.comb += [c.data.eq(port.data) for c in clients]


def _share_write(m: Module, port: memory.WritePort, clients: list) -> None:
    """Memory write ``port`` shared by initiator ports ``clients`` (as :func:`_share_read`)."""
    addr, wdata = clients[-1].addr, clients[-1].data
    for c in reversed(clients[:-1]):
        addr, wdata = Mux(c.en, c.addr, addr), Mux(c.en, c.data, wdata)
    m.d.comb += [port.addr.eq(addr), port.data.eq(wdata),
                 port.en.eq(Cat(*[c.en for c in clients]).any())]


class TensorCore(wiring.Component):
    """One tensor core: array, SRAMs, command queue, dispatcher, matmul and vector units.

    Commands (``i_cmd``, :class:`models.tensor_cmd.TensorCmd`) enter a queue of
    ``config.tensor.cmd_depth``. The dispatcher checks the command at its head with the
    rules of ``models.tensor_cmd.check`` (:class:`rtl.tensor.check.CmdCheck`) and sends
    legal MATMULs to the :class:`rtl.tensor.matmul.MatmulController`, legal VECTORs to
    the vector unit. Ordering: MATMULs pipeline freely behind each other; a VECTOR waits
    until every earlier MATMUL has written its last row; a MATMUL waits until the vector
    unit is idle (a fence at every switch of unit). An illegal command latches
    ``o_error`` and ``o_err_code`` (first error wins) and is discarded, and so is every
    later command that reaches the dispatcher until ``i_clear_err`` pulses; the queue
    keeps draining at one command per cycle, so ``i_cmd`` never blocks for long and
    nothing hangs.

    SRAMs (``amaranth.lib.memory``, initialised to zero, one-cycle reads):

    * activation: ``act_rows`` x R*8 bits, lane r = bits [8r+7 : 8r];
    * weight: ``weight_rows`` x C*8 bits, lane c = bits [8c+7 : 8c];
    * accumulator: ``acc_rows`` x C*32 bits (INT32 or binary32), lane c = bits
      [32c+31 : 32c]; two read ports (matmul read-modify-write / vector port A / host,
      and vector port B), both transparent to its one write port.

    Host port (testbenches, later the DMA): ``i_wr`` writes a row, ``i_rd`` reads one,
    answered in order on ``o_rd``. Both are served only while ``o_idle`` (ready low
    otherwise), so host traffic never races with commands: wait for ``o_idle`` before
    reading results, and send commands only after the writes they depend on were
    accepted. Addresses past the SRAM's end (and ``mem`` = 3) are ignored by writes and
    read as zero.

    Latency and throughput: see :class:`rtl.tensor.matmul.MatmulController`; a sequence
    of MATMULs sent back to back takes ``models.tensor_core.matmul_cycles`` cycles from
    the first command accepted to ``o_idle``.

    Golden model: ``models.tensor_core.TensorCoreModel`` (bit-exact SRAM contents and
    error codes).

    Parameters
    ----------
    config : JalapenoConfig
        ``systolic`` (array shape, FP8) and ``tensor`` (SRAM depths, queue depth).
    matmul : callable, optional
        ``factory(config)`` of the matmul controller (default
        :class:`rtl.tensor.matmul.MatmulController`; tests substitute a faulty one).
    vector_unit : callable, optional
        ``factory(config)`` of the vector unit (default ``rtl.vector.unit.VectorUnit``).

    Members
    -------
    i_cmd : In(stream.Signature(tensor_cmd_layout()))
    i_wr : In(stream.Signature(host_wr_layout(config)))
    i_rd : In(stream.Signature(host_rd_layout()))
    o_rd : Out(stream.Signature(host_rdata_layout(config)))
    o_idle : Out(1)
        No command queued or executing, every result written.
    o_error : Out(1)
        Sticky: an illegal command was seen (cleared by ``i_clear_err``).
    o_err_code : Out(4)
        The ``models.tensor_cmd.ErrCode`` of the first illegal command (0 if none).
    i_clear_err : In(1)
        Pulse: clear ``o_error``/``o_err_code``; the dispatcher pauses in that cycle.
    o_perf : Out(perf_layout())
    """

    def __init__(self, config: JalapenoConfig, *, matmul=MatmulController,
                 vector_unit=VectorUnit):
        if not isinstance(config, JalapenoConfig):
            raise TypeError(f"TensorCore needs a JalapenoConfig, got {config!r}")
        self._config = config
        self.matmul = matmul(config)
        self.vector = vector_unit(config)
        super().__init__({
            "i_cmd": In(stream.Signature(tensor_cmd_layout())),
            "i_wr": In(stream.Signature(host_wr_layout(config))),
            "i_rd": In(stream.Signature(host_rd_layout())),
            "o_rd": Out(stream.Signature(host_rdata_layout(config))),
            "o_idle": Out(1),
            "o_error": Out(1),
            "o_err_code": Out(ERR_CODE_BITS),
            "i_clear_err": In(1),
            "o_perf": Out(perf_layout()),
        })

    @property
    def config(self) -> JalapenoConfig:
        return self._config

    def elaborate(self, platform):
        m = Module()
        m.submodules.matmul = self.matmul
        m.submodules.vector = self.vector
        idle, discard, vec_done = self._dispatcher(m)
        host = self._host_port(m, idle)
        self._srams(m, host)
        self._counters(m, idle, discard, vec_done)
        return m

    def _dispatcher(self, m: Module):
        """Command queue, legality check, sticky error and the fences between the units.

        Returns ``(idle, discard, vec_done)``: the core is idle; the head command is
        dropped this cycle; a VECTOR command completed this cycle.
        """
        cfg = self._config
        mm, vu = self.matmul, self.vector
        m.submodules.cmd_q = cmd_q = Queue(tensor_cmd_layout(), cfg.tensor.cmd_depth)
        m.submodules.check = chk = CmdCheck(cfg)
        wiring.connect(m, wiring.flipped(self.i_cmd), cmd_q.i)
        head = cmd_q.o
        error = Signal()
        err_code = Signal(ERR_CODE_BITS)
        vec_sent = Signal()      # a VECTOR was handed over last cycle (its idle may lag)
        vu_quiet = vu.o_idle & ~vec_sent
        legal = chk.o_code == 0
        is_mm = head.payload.unit == int(Unit.MATMUL)
        go = head.valid & ~self.i_clear_err & ~error & legal
        discard = head.valid & ~self.i_clear_err & (error | ~legal)
        m.d.comb += [
            chk.i_cmd.eq(head.payload),
            mm.i_cmd.payload.eq(head.payload),
            mm.i_cmd.valid.eq(go & is_mm & vu_quiet),
            vu.i_cmd.payload.eq(head.payload),
            vu.i_cmd.valid.eq(go & ~is_mm & ~mm.o_busy),
            head.ready.eq(discard | (mm.i_cmd.valid & mm.i_cmd.ready)
                          | (vu.i_cmd.valid & vu.i_cmd.ready)),
            self.o_error.eq(error),
            self.o_err_code.eq(err_code),
        ]
        vec_fire = vu.i_cmd.valid & vu.i_cmd.ready
        m.d.sync += vec_sent.eq(vec_fire)
        # the vector unit takes one command at a time: it completes when idle returns
        vu_idle_q = Signal(init=1)
        m.d.sync += vu_idle_q.eq(vu.o_idle)
        vec_done = vu.o_idle & ~vu_idle_q
        with m.If(self.i_clear_err):
            m.d.sync += [error.eq(0), err_code.eq(0)]
        with m.Elif(head.valid & ~error & ~legal):
            m.d.sync += [error.eq(1), err_code.eq(chk.o_code)]
        idle = ~head.valid & ~mm.o_busy & vu_quiet
        m.d.comb += self.o_idle.eq(idle)
        return idle, discard, vec_done

    def _host_port(self, m: Module, idle) -> dict:
        """Host writes and reads, served only while ``idle``.

        Returns the host's initiator ports on the SRAMs, ``{"act_rd": ..., "act_wr": ...,
        "wgt_rd", "wgt_wr", "acc_rd", "acc_wr"}``, for :meth:`_srams` to share.
        """
        cfg = self._config
        tc, sa = cfg.tensor, cfg.systolic
        rows = {MemSel.ACT: tc.act_rows, MemSel.WEIGHT: tc.weight_rows, MemSel.ACC: tc.acc_rows}
        bits = {MemSel.ACT: sa.rows * 8, MemSel.WEIGHT: sa.cols * 8, MemSel.ACC: sa.cols * 32}
        names = {MemSel.ACT: "act", MemSel.WEIGHT: "wgt", MemSel.ACC: "acc"}
        host = {}
        for sel, name in names.items():
            host[f"{name}_rd"] = _initiator(memory.ReadPort.Signature(
                addr_width=SRAM_ADDR_BITS, shape=bits[sel]), f"host_{name}_rd")
            host[f"{name}_wr"] = _initiator(memory.WritePort.Signature(
                addr_width=SRAM_ADDR_BITS, shape=bits[sel]), f"host_{name}_wr")

        # writes: addresses past the end are dropped
        wr = self.i_wr.payload
        m.d.comb += self.i_wr.ready.eq(idle)
        wr_fire = self.i_wr.valid & idle
        for sel, name in names.items():
            port = host[f"{name}_wr"]
            m.d.comb += [port.addr.eq(wr.addr), port.data.eq(wr.data),
                         port.en.eq(wr_fire & (wr.mem == sel) & (wr.addr < rows[sel]))]

        # reads: one cycle in the SRAM, then a queue of RD_BUFFER; past the end reads 0
        m.submodules.rd_q = rd_q = Queue(host_rdata_layout(cfg), RD_BUFFER)
        wiring.connect(m, rd_q.o, wiring.flipped(self.o_rd))
        rq = self.i_rd.payload
        rd_infl = Signal()
        rd_sel = Signal(MemSel)
        rd_zero = Signal()
        m.d.comb += self.i_rd.ready.eq(idle & (rd_q.level + rd_infl < RD_BUFFER))
        rd_fire = self.i_rd.valid & self.i_rd.ready
        for sel, name in names.items():
            port = host[f"{name}_rd"]
            m.d.comb += [port.addr.eq(rq.addr), port.en.eq(rd_fire & (rq.mem == sel))]
        in_range = Mux(rq.mem == MemSel.ACT, rq.addr < tc.act_rows,
                       Mux(rq.mem == MemSel.WEIGHT, rq.addr < tc.weight_rows,
                           Mux(rq.mem == MemSel.ACC, rq.addr < tc.acc_rows, 0)))
        m.d.sync += rd_infl.eq(rd_fire)
        with m.If(rd_fire):
            m.d.sync += [rd_sel.eq(rq.mem), rd_zero.eq(~in_range)]
        rdata = Mux(rd_sel == MemSel.ACT, host["act_rd"].data,
                    Mux(rd_sel == MemSel.WEIGHT, host["wgt_rd"].data, host["acc_rd"].data))
        m.d.comb += [rd_q.i.valid.eq(rd_infl),
                     rd_q.i.payload.data.eq(Mux(rd_zero, 0, rdata))]
        return host

    def _srams(self, m: Module, host: dict) -> None:
        """The three SRAMs and their port muxes. Owners never overlap: the host only
        while idle, the vector unit and the matmul controller separated by the
        dispatcher's fences."""
        tc, sa = self._config.tensor, self._config.systolic
        mm, vu = self.matmul, self.vector
        m.submodules.act_mem = act_mem = memory.Memory(shape=sa.rows * 8, depth=tc.act_rows,
                                                       init=[])
        m.submodules.wgt_mem = wgt_mem = memory.Memory(shape=sa.cols * 8,
                                                       depth=tc.weight_rows, init=[])
        m.submodules.acc_mem = acc_mem = memory.Memory(shape=sa.cols * 32, depth=tc.acc_rows,
                                                       init=[])
        act_w, act_r = act_mem.write_port(), act_mem.read_port()
        wgt_w, wgt_r = wgt_mem.write_port(), wgt_mem.read_port()
        acc_w = acc_mem.write_port()
        acc_ra = acc_mem.read_port(transparent_for=(acc_w,))
        acc_rb = acc_mem.read_port(transparent_for=(acc_w,))
        _share_read(m, act_r, [host["act_rd"], mm.m_act_rd])
        _share_read(m, wgt_r, [host["wgt_rd"], mm.m_wgt_rd])
        _share_write(m, wgt_w, [host["wgt_wr"]])
        _share_write(m, act_w, [vu.m_act_wr, host["act_wr"]])
        _share_read(m, acc_ra, [vu.m_acc_rd_a, host["acc_rd"], mm.m_acc_rd])
        _share_read(m, acc_rb, [vu.m_acc_rd_b])
        _share_write(m, acc_w, [vu.m_acc_wr, mm.m_acc_wr, host["acc_wr"]])

    def _counters(self, m: Module, idle, discard, vec_done) -> None:
        """The performance counters (:func:`perf_layout`)."""
        mm, vu = self.matmul, self.vector
        p = self.o_perf
        m.d.sync += [
            p.busy.eq(p.busy + ~idle),
            p.act.eq(p.act + mm.o_act_fire),
            p.vector.eq(p.vector + ~vu.o_idle),
            p.cmds.eq(p.cmds + mm.o_done + vec_done),
            p.discarded.eq(p.discarded + discard),
        ]
