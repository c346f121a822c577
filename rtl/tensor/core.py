# amaranth: UnusedElaboratable=no
"""Tensor core: systolic array + activation/weight/accumulator SRAMs + command controller."""
from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from models.config import JalapenoConfig
from models.tensor_cmd import (ERR_CODE_BITS, VECTOR_READS_SRC, VECTOR_READS_SRC2, VECTOR_WRITES,
                               Unit, VecOp)
from rtl.formats import SRAM_ADDR_BITS, tensor_cmd_layout
from rtl.lib.stream import Queue
from rtl.tensor.check import CmdCheck
from models.tensor_core import acc_add_stages
from rtl.tensor.matmul import MatmulController, result_queue_depth
from rtl.vector.unit import VectorUnit

__all__ = ["TensorCore", "MemSel", "host_data_bits", "host_wr_layout", "host_rd_layout",
           "host_rdata_layout", "perf_layout", "RD_BUFFER", "row_bytes", "dma_rd_ports",
           "dma_wr_layout", "DMA_WAIT_MAX", "acc_bank_bit"]

#: Read results the host port buffers (reads are accepted only while there is room).
RD_BUFFER = 3
#: Cycles a DMA write may wait for its SRAM before the dispatcher holds new commands.
DMA_WAIT_MAX = 16


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
    after an error); ``overlap``: cycles in which the matmul controller and the vector
    unit were both busy (``indep`` commands, docs/tensor_core.md "Overlap").
    """
    return data.StructLayout({"busy": 32, "act": 32, "vector": 32, "cmds": 32,
                              "discarded": 32, "overlap": 32})


def row_bytes(config: JalapenoConfig, mem) -> int:
    """Bytes of one row of SRAM ``mem``: R (activation), C (weight), 4C (accumulator)."""
    sa = config.systolic
    return {MemSel.ACT: sa.rows, MemSel.WEIGHT: sa.cols, MemSel.ACC: 4 * sa.cols}[MemSel(mem)]


def dma_rd_ports(config: JalapenoConfig, mem) -> int:
    """DMA read ports of SRAM ``mem``: one per row a DMA word (``hbm.data_bytes``) covers
    (a word narrower than a row is a slice of one row: one port)."""
    return max(1, config.hbm.data_bytes // row_bytes(config, mem))


def dma_wr_layout(config: JalapenoConfig) -> data.StructLayout:
    """DMA write: bytes of ``data`` whose ``mask`` bit is set go to row ``addr`` of ``mem``."""
    bits = host_data_bits(config)
    return data.StructLayout({"mem": MemSel, "addr": SRAM_ADDR_BITS, "data": bits,
                              "mask": bits // 8})


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


def _share_write_bytes(m: Module, port: memory.WritePort, clients: list, dma) -> None:
    """Byte-granular write ``port`` shared by whole-row ``clients`` (as :func:`_share_write`,
    their enable drives every byte) and, with the lowest priority, ``dma`` = ``(en,
    data, mask, addr)`` (its own byte mask)."""
    nb = len(port.en)
    en, addr, data, mask = dma
    for c in reversed(clients):
        addr, data = Mux(c.en, c.addr, addr), Mux(c.en, c.data, data)
        mask = Mux(c.en, (1 << nb) - 1, mask)
        en = c.en | en
    m.d.comb += [port.addr.eq(addr), port.data.eq(data), port.en.eq(Mux(en, mask, 0))]


def acc_bank_bit(config: JalapenoConfig) -> int:
    """The accumulator row-address bit that selects its bank (``acc_rows / 2``: the top
    bit; ``models.tensor_core.acc_bank``)."""
    return config.tensor.acc_rows.bit_length() - 2


def _range_banks(first, count, bit: int):
    """2-bit bank mask of rows ``first .. first + count - 1`` (in range): bank 0 if the
    first row is there, bank 1 if the last row is."""
    return Cat(~first[bit], (first + count - 1)[bit])


def _cmd_banks(m: Module, cmd, bit: int):
    """Accumulator bank mask (bit b: bank b) of the rows a legal command touches
    (``models.tensor_core.acc_banks``)."""
    def op_in(ops):
        return Cat(*[cmd.op == int(o) for o in ops]).any()

    dst = _range_banks(cmd.dst, cmd.count, bit)
    src = _range_banks(cmd.src, cmd.count, bit)
    src2 = _range_banks(cmd.src2, cmd.count, bit)
    reads2 = op_in(VECTOR_READS_SRC2) | ((cmd.op == int(VecOp.REQUANT)) & cmd.bias)
    writes = op_in(VECTOR_WRITES) & ~cmd.dst_act
    vec = (Mux(op_in(VECTOR_READS_SRC), src, 0) | Mux(reads2, src2, 0)
           | Mux(writes, dst, 0))
    mask = Signal(2)
    m.d.comb += mask.eq(Mux(cmd.unit == int(Unit.MATMUL), dst, vec))
    return mask


def _share_read_banked(m: Module, ports: list, clients: list, bit: int) -> None:
    """Read ports ``ports[b]`` of the two accumulator banks shared by ``clients``
    (highest priority first, as :func:`_share_read`): each client's address bit ``bit``
    picks the bank, the data comes from the bank it read last (held while ``en`` is low)."""
    for b, port in enumerate(ports):
        en = [c.en & (c.addr[bit] == b) for c in clients]
        addr = clients[-1].addr
        for c, e in zip(reversed(clients[:-1]), reversed(en[:-1])):
            addr = Mux(e, c.addr, addr)
        m.d.comb += [port.addr.eq(addr), port.en.eq(Cat(*en).any())]
    for c in clients:
        sel = Signal()
        with m.If(c.en):
            m.d.sync += sel.eq(c.addr[bit])
        m.d.comb += c.data.eq(Mux(sel, ports[1].data, ports[0].data))


def _bank_client(m: Module, c, bit: int, b: int, name: str):
    """A copy of write initiator ``c`` enabled only for addresses in bank ``b``."""
    g = _initiator(memory.WritePort.Signature(addr_width=SRAM_ADDR_BITS, shape=len(c.data)),
                   name)
    m.d.comb += [g.addr.eq(c.addr), g.data.eq(c.data), g.en.eq(c.en & (c.addr[bit] == b))]
    return g


class TensorCore(wiring.Component):
    """One tensor core: array, SRAMs, command queue, dispatcher, matmul and vector units.

    Commands (``i_cmd``, :class:`models.tensor_cmd.TensorCmd`) enter a queue of
    ``config.tensor.cmd_depth``. The dispatcher checks the command at its head with the
    rules of ``models.tensor_cmd.check`` (:class:`rtl.tensor.check.CmdCheck`) and sends
    legal MATMULs to the :class:`rtl.tensor.matmul.MatmulController`, legal VECTORs to
    the vector unit. Ordering: MATMULs pipeline freely behind each other; a VECTOR waits
    until every earlier MATMUL has written its last row; a MATMUL waits until the vector
    unit is idle (a fence at every switch of unit). A command with ``indep`` waits only
    for the other unit's in-flight commands that use one of its accumulator banks (two
    banks by the top row bit, :func:`acc_bank_bit`; docs/tensor_core.md "Overlap"). An illegal command latches
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

    DMA port (``dma_port=True``, the compute tile): the DMA reaches the SRAMs while
    commands run (decoupled access/execute). Reads use their own SRAM read ports
    (``s_dma_act_rd``, ``s_dma_wgt_rd``, ``s_dma_acc_rd``: :func:`dma_rd_ports` each,
    one-cycle reads, no arbitration, never delayed). Writes (``i_dma_wr``, byte-masked)
    share each SRAM's one write port with the lowest priority: ``ready`` is low in a
    cycle in which the vector unit, the matmul controller or the host write the same
    SRAM, so a running command never waits. Starvation bound, both ways: once a DMA
    write has waited :data:`DMA_WAIT_MAX` cycles, the dispatcher starts no new command
    until the DMA has written DMA_WAIT_MAX rows or has none left, so a DMA write waits
    at most DMA_WAIT_MAX cycles + what the commands already started still write to that
    SRAM (the weight SRAM has no unit writer: never), and the commands wait at most for
    DMA_WAIT_MAX DMA writes. A program that does not use the DMA port keeps its cycle
    count; without the DMA port (default) the core is unchanged.

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
    dma_port : bool
        Add ``i_dma_wr`` and the ``s_dma_*_rd`` ports (default False).

    Members
    -------
    i_cmd : In(stream.Signature(tensor_cmd_layout()))
    i_wr : In(stream.Signature(host_wr_layout(config)))
    i_rd : In(stream.Signature(host_rd_layout()))
    o_rd : Out(stream.Signature(host_rdata_layout(config)))
    o_idle : Out(1)
        No command queued or executing, every result written.
    o_retire : Out(2)
        Commands finished this cycle: a MATMUL wrote its last row, a VECTOR completed, an
        illegal command was discarded. Each unit finishes its commands in order; without
        ``indep`` legal commands finish in program order (a discard may overtake MATMULs
        still in the array), with it a VECTOR may finish before earlier MATMULs and the
        reverse.
    o_error : Out(1)
        Sticky: an illegal command was seen (cleared by ``i_clear_err``).
    o_err_code : Out(4)
        The ``models.tensor_cmd.ErrCode`` of the first illegal command (0 if none).
    i_clear_err : In(1)
        Pulse: clear ``o_error``/``o_err_code``; the dispatcher pauses in that cycle.
    o_perf : Out(perf_layout())
    i_dma_wr : In(stream.Signature(dma_wr_layout(config))), with ``dma_port``
    s_dma_act_rd, s_dma_wgt_rd, s_dma_acc_rd : Out(memory.ReadPort.Signature(addr_width=
        rtl.formats.SRAM_ADDR_BITS, shape=row bits)).array(dma_rd_ports(config, mem)),
        with ``dma_port``; addresses past the end wrap (the low address bits are used).
    """

    def __init__(self, config: JalapenoConfig, *, matmul=MatmulController,
                 vector_unit=VectorUnit, dma_port: bool = False):
        if not isinstance(config, JalapenoConfig):
            raise TypeError(f"TensorCore needs a JalapenoConfig, got {config!r}")
        self._config = config
        self.matmul = matmul(config)
        self.vector = vector_unit(config)
        self.dma_port = dma_port
        members = {}
        if dma_port:
            members["i_dma_wr"] = In(stream.Signature(dma_wr_layout(config)))
            for sel, name in ((MemSel.ACT, "act"), (MemSel.WEIGHT, "wgt"), (MemSel.ACC, "acc")):
                members[f"s_dma_{name}_rd"] = Out(memory.ReadPort.Signature(
                    addr_width=SRAM_ADDR_BITS, shape=8 * row_bytes(config, sel))).array(
                    dma_rd_ports(config, sel))
        super().__init__(members | {
            "i_cmd": In(stream.Signature(tensor_cmd_layout())),
            "i_wr": In(stream.Signature(host_wr_layout(config))),
            "i_rd": In(stream.Signature(host_rd_layout())),
            "o_rd": Out(stream.Signature(host_rdata_layout(config))),
            "o_idle": Out(1),
            "o_retire": Out(2),
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
        # DMA write starved for DMA_WAIT_MAX cycles: start no new command (dma_port only)
        self._dma_hold = Signal() if self.dma_port else Const(0, 1)
        idle, discard, vec_done = self._dispatcher(m)
        m.d.comb += self.o_retire.eq(self.matmul.o_done + vec_done + discard)
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
        go = head.valid & ~self.i_clear_err & ~error & legal & ~self._dma_hold
        discard = head.valid & ~self.i_clear_err & (error | ~legal)
        # overlap (indep): accumulator banks of the head command, of the running VECTOR,
        # and of every MATMUL dispatched and not finished (counted per bank)
        banks = _cmd_banks(m, head.payload, acc_bank_bit(cfg))
        vec_banks = Signal(2)
        mm_busy_banks, mm_room = self._matmul_banks(m, banks)
        indep = head.payload.indep
        mm_ok = vu_quiet | (indep & ~(banks & vec_banks).any())
        vu_ok = ~mm.o_busy | (indep & ~(banks & mm_busy_banks).any())
        m.d.comb += [
            chk.i_cmd.eq(head.payload),
            mm.i_cmd.payload.eq(head.payload),
            mm.i_cmd.valid.eq(go & is_mm & mm_ok & mm_room),
            vu.i_cmd.payload.eq(head.payload),
            vu.i_cmd.valid.eq(go & ~is_mm & vu_ok),
            head.ready.eq(discard | (mm.i_cmd.valid & mm.i_cmd.ready)
                          | (vu.i_cmd.valid & vu.i_cmd.ready)),
            self.o_error.eq(error),
            self.o_err_code.eq(err_code),
        ]
        vec_fire = vu.i_cmd.valid & vu.i_cmd.ready
        m.d.sync += vec_sent.eq(vec_fire)
        with m.If(vec_fire):
            m.d.sync += vec_banks.eq(banks)
        self._overlap = Signal()        # both units busy this cycle (coverage, docs)
        m.d.comb += self._overlap.eq(mm.o_busy & ~vu_quiet)
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

    def _matmul_banks(self, m: Module, banks):
        """Per-bank count of the MATMULs dispatched and not finished (a queue of their
        bank masks, pushed at dispatch, popped when the matmul controller reports a
        command's last row written: they finish in order).

        Returns ``(busy, room)``: the 2-bit mask of banks with a MATMUL in flight; the
        mask queue can take the next MATMUL.
        """
        mm = self.matmul
        depth = result_queue_depth(self._config) + acc_add_stages(self._config) + 2
        m.submodules.mm_banks_q = q = Queue(2, depth)
        push = mm.i_cmd.valid & mm.i_cmd.ready
        m.d.comb += [q.i.valid.eq(push), q.i.payload.eq(banks), q.o.ready.eq(mm.o_done)]
        busy = Signal(2)
        for b in range(2):
            cnt = Signal(range(depth + 1), name=f"mm_bank{b}_cmds")
            m.d.sync += cnt.eq(cnt + (push & banks[b]) - (mm.o_done & q.o.payload[b]))
            m.d.comb += busy[b].eq(cnt != 0)
        return busy, q.i.ready

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
        # the accumulator: two banks by the top row bit (docs/tensor_core.md "Overlap")
        bit = acc_bank_bit(self._config)
        acc_mems = []
        for b in range(2):
            m.submodules[f"acc_mem{b}"] = am = memory.Memory(
                shape=sa.cols * 32, depth=tc.acc_rows // 2, init=[])
            acc_mems.append(am)
        g = {"granularity": 8} if self.dma_port else {}
        act_w, act_r = act_mem.write_port(**g), act_mem.read_port()
        wgt_w, wgt_r = wgt_mem.write_port(**g), wgt_mem.read_port()
        acc_w = [am.write_port(**g) for am in acc_mems]
        acc_ra = [am.read_port(transparent_for=(w,)) for am, w in zip(acc_mems, acc_w)]
        acc_rb = [am.read_port(transparent_for=(w,)) for am, w in zip(acc_mems, acc_w)]
        _share_read(m, act_r, [host["act_rd"], mm.m_act_rd])
        _share_read(m, wgt_r, [host["wgt_rd"], mm.m_wgt_rd])
        _share_read_banked(m, acc_ra, [vu.m_acc_rd_a, host["acc_rd"], mm.m_acc_rd], bit)
        _share_read_banked(m, acc_rb, [vu.m_acc_rd_b], bit)
        acc_clients = [vu.m_acc_wr, mm.m_acc_wr, host["acc_wr"]]
        bank_clients = [[_bank_client(m, c, bit, b, f"acc{b}_wr{i}")
                         for i, c in enumerate(acc_clients)] for b in range(2)]
        writers = {"act": (act_w, [vu.m_act_wr, host["act_wr"]], MemSel.ACT),
                   "wgt": (wgt_w, [host["wgt_wr"]], MemSel.WEIGHT),
                   "acc0": (acc_w[0], bank_clients[0], MemSel.ACC),
                   "acc1": (acc_w[1], bank_clients[1], MemSel.ACC)}
        if not self.dma_port:
            for port, clients, _ in writers.values():
                _share_write(m, port, clients)
            return
        dw = self.i_dma_wr
        busy = {}
        for name, (port, clients, sel) in writers.items():
            busy[name] = Signal(name=f"{name}_wr_busy")
            m.d.comb += busy[name].eq(Cat(*[c.en for c in clients]).any())
            mine = dw.valid & (dw.payload.mem == sel)
            if sel == MemSel.ACC:
                mine &= dw.payload.addr[bit] == int(name[-1])
            _share_write_bytes(m, port, clients, (mine, dw.payload.addr, dw.payload.data,
                                                  dw.payload.mask))
        self._dma_reads(m, act_mem, wgt_mem, acc_mems, bit)
        acc_busy = Mux(dw.payload.addr[bit], busy["acc1"], busy["acc0"])
        m.d.comb += dw.ready.eq(~Mux(dw.payload.mem == MemSel.ACT, busy["act"],
                                     Mux(dw.payload.mem == MemSel.WEIGHT, busy["wgt"],
                                         acc_busy)))
        # starvation bound: after DMA_WAIT_MAX cycles of waiting, hold the dispatcher (the
        # units finish what they started, the SRAM frees up) until the DMA has written
        # DMA_WAIT_MAX rows or has nothing more to write; then the units run again
        waited = Signal(range(DMA_WAIT_MAX + 1))
        served = Signal(range(DMA_WAIT_MAX + 1))
        hold = Signal()
        fire = dw.valid & dw.ready
        with m.If(dw.valid & ~dw.ready & (waited != DMA_WAIT_MAX)):
            m.d.sync += waited.eq(waited + 1)
        with m.Elif(~dw.valid | fire):
            m.d.sync += waited.eq(0)
        with m.If(hold):
            m.d.sync += served.eq(served + fire)
            with m.If(~dw.valid | (fire & (served == DMA_WAIT_MAX - 1))):
                m.d.sync += [hold.eq(0), served.eq(0)]
        with m.Elif(waited == DMA_WAIT_MAX):
            m.d.sync += hold.eq(1)
        m.d.comb += self._dma_hold.eq(hold)

    def _dma_reads(self, m: Module, act_mem, wgt_mem, acc_mems, bit: int) -> None:
        """The DMA's own read ports: one SRAM read port each (accumulator: one in each
        bank, the data from the bank the address picked)."""
        for name, mem in (("act", act_mem), ("wgt", wgt_mem)):
            for dport in getattr(self, f"s_dma_{name}_rd"):
                rp = mem.read_port()
                m.d.comb += [rp.addr.eq(dport.addr), rp.en.eq(dport.en),
                             dport.data.eq(rp.data)]
        for dport in self.s_dma_acc_rd:
            rps = [am.read_port() for am in acc_mems]
            sel = Signal()
            with m.If(dport.en):
                m.d.sync += sel.eq(dport.addr[bit])
            m.d.comb += [rp.addr.eq(dport.addr) for rp in rps]
            m.d.comb += [rp.en.eq(dport.en & (dport.addr[bit] == b)) for b, rp in enumerate(rps)]
            m.d.comb += dport.data.eq(Mux(sel, rps[1].data, rps[0].data))

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
            p.overlap.eq(p.overlap + self._overlap),
        ]
