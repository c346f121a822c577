"""Descriptor-driven DMA engine: 1D/2D/3D strided copies between AXI4 (HBM) and SRAM."""
from __future__ import annotations

from types import SimpleNamespace

from amaranth import Const, Module, Mux, Signal
from amaranth.lib import data, enum, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from models.axi import LEN_BITS, Burst, Resp
from models.config import DmaConfig
from models.dma import (ERR_BITS, FIELD_BITS, INDEX_BYTES, DmaDir, DmaError, burst_chunk,
                        index_lookahead)
from rtl.formats import dma_desc_layout, dma_done_layout
from rtl.lib.axi import AxiSignature
from rtl.lib.stream import Queue

__all__ = ["DmaEngine"]


class _FrontEnd(enum.Enum, shape=2):
    """States of the descriptor front end (fetch -> check -> generate)."""

    IDLE = 0
    CHECK = 1
    RUN = 2


def _log2(x):
    return x.bit_length() - 1


class DmaEngine(wiring.Component):
    """DMA engine with one AXI4 manager port and one SRAM read and one SRAM write port.

    Parameters
    ----------
    config : DmaConfig
    data_bytes : int
        Width of the AXI data bus and of an SRAM word.
    id_bits : int
        AXI ID width (the engine always uses ID 0, so responses arrive in order).

    Members
    -------
    m_axi : Out(AxiSignature(addr_width=32, data_width=8 * data_bytes, id_width=id_bits))
    i_desc : In(stream.Signature(rtl.formats.dma_desc_layout()))
        Descriptors (:class:`models.dma.Descriptor`), queued ``desc_depth`` deep.
    o_done : Out(stream.Signature(rtl.formats.dma_done_layout()))
        One completion ``{tag, err}`` per descriptor, in order (``err``:
        :class:`models.dma.DmaError`).
    i_win_base, i_win_limit : In(32)
        AXI window ``[base, limit)``; keep stable while busy.
    m_sram_rd : In(memory.ReadPort.Signature(addr_width=log2(sram words), shape=8 * data_bytes))
        SRAM reads (STORE), word addressed; ``data`` is valid the cycle after ``en``.
    m_sram_wr : In(memory.WritePort.Signature(..., granularity=8))
        SRAM writes (LOAD), word addressed; ``en`` is the byte strobe.
    o_busy : Out(1)

    Behaviour: a descriptor is checked first (:class:`models.dma.DmaError` order:
    BAD_LENGTH, MISALIGNED, WINDOW); a rejected descriptor touches nothing. Otherwise
    each row is cut into INCR bursts of full-width beats that never cross a multiple of
    :func:`models.dma.burst_chunk` (so never 4 KiB), first/last beats strobed to the
    row's bytes. Up to ``max_outstanding`` bursts are in flight, and they may belong to
    up to ``descs_in_flight`` consecutive descriptors: the next descriptor is checked
    and starts issuing while earlier bursts are still outstanding, as long as it copies
    in the same direction (a change of direction waits until everything has drained,
    so the SRAM is never read and written by different descriptors at once and a STORE
    sees the SRAM writes of an earlier LOAD). Completion is tracked per descriptor in
    order (burst count per descriptor, first error code per descriptor). After an error
    response the failing descriptor issues no new burst and, for a LOAD, writes no more
    SRAM words; its outstanding bursts drain and the first error code is reported.
    Later descriptors are not affected.

    Indexed descriptors (``index = 1``, :mod:`models.dma`): the engine reads the index
    list with one-beat reads of its own (each beat of the list once; on the read channel
    in both directions), :func:`models.dma.index_lookahead` indices ahead of the plane
    being copied. A plane pipeline takes one index per cycle, multiplies it by the AXI
    zstride (registered 32 x 32 product), checks the plane's AXI rows against the window
    (exact, no wrap) and queues the plane's base, so a plane's rows follow the previous
    plane's without a gap; a plane outside the window ends the descriptor (its earlier
    bursts complete) with WINDOW, an error response to an index read like any other
    (first error wins, over WINDOW). Burst order: :func:`models.dma.plan_bursts`. An
    indexed STORE starts only when the engine has drained (its index reads and the
    write responses of earlier stores would otherwise share the response order), and
    no descriptor starts while index reads of an earlier one are in flight.

    Latency and throughput: a lone load takes ``read_latency + beats + 6`` cycles from
    the cycle it is accepted to the cycle its completion is valid, both counted (fetch,
    check, address register, data, completion queue). Back to back, a descriptor costs
    1 check cycle + 1 cycle per burst address, overlapped with the data of earlier
    ones, so a stream of >= 1 KiB descriptors is data-bound (1 beat per cycle).
    Golden model: :mod:`models.dma` (codes, bytes, bursts; timing cycle-exact for
    same-direction load streams: :func:`models.dma.stream_cycles`).
    """

    def __init__(self, config: DmaConfig, *, data_bytes: int, id_bits: int):
        self.cfg = config
        self.W = data_bytes
        self.id_bits = id_bits
        self.sram_words = config.sram_bytes // data_bytes
        self.sram_addr_bits = max(_log2(self.sram_words), 1)
        word = 8 * data_bytes
        super().__init__({
            "m_axi": Out(AxiSignature(addr_width=32, data_width=word, id_width=id_bits)),
            "i_desc": In(stream.Signature(dma_desc_layout())),
            "o_done": Out(stream.Signature(dma_done_layout())),
            "i_win_base": In(32), "i_win_limit": In(32),
            "m_sram_rd": In(memory.ReadPort.Signature(addr_width=self.sram_addr_bits,
                                                      shape=word)),
            "m_sram_wr": In(memory.WritePort.Signature(addr_width=self.sram_addr_bits,
                                                       shape=word, granularity=8)),
            "o_busy": Out(1),
        })

    # The sections below share their signals through one namespace ``x``; they are
    # called in this order, which matters where a later section overrides an earlier
    # section's sync assignment (the front end's descriptor start wins over the
    # address generator's advance).
    def elaborate(self, platform):
        m = Module()
        x = SimpleNamespace()
        self._descriptor(m, x)
        self._bookkeeping(m, x)
        self._address_generator(m, x)
        self._load_path(m, x)
        self._store_path(m, x)
        self._completion(m, x)
        self._index(m, x)
        self._front_end(m, x)
        return m

    # --- descriptor queue and check (combinational on the latched descriptor) ---------
    def _descriptor(self, m, x):
        c, lw = self.cfg, _log2(self.W)
        m.submodules.dq = x.dq = Queue(dma_desc_layout(), c.desc_depth)
        wiring.connect(m, wiring.flipped(self.i_desc), x.dq.i)
        x.d = d = Signal(dma_desc_layout(), name="d")     # being checked / generated
        store = d.dir == DmaDir.STORE
        x.axi_base, x.sram_base = Mux(store, d.dst, d.src), Mux(store, d.src, d.dst)
        x.axi_ys = Mux(store, d.dst_ystride, d.src_ystride)
        x.sram_ys = Mux(store, d.src_ystride, d.dst_ystride)
        x.axi_zs = Mux(store, d.dst_zstride, d.src_zstride)
        x.sram_zs = Mux(store, d.src_zstride, d.dst_zstride)
        x.ym1 = Signal(FIELD_BITS["rows"], name="ym1")
        x.zm1 = Signal(FIELD_BITS["planes"], name="zm1")
        ext_axi, ext_sram, total = Signal(64), Signal(64), Signal(64)
        x.ext_row = Signal(64, name="ext_row")     # AXI bytes of one plane (index = 1)
        list_end = Signal(34)
        m.d.comb += [
            x.ym1.eq(d.rows - 1), x.zm1.eq(d.planes - 1),
            ext_axi.eq(x.zm1 * x.axi_zs + x.ym1 * x.axi_ys + d.row_bytes),
            ext_sram.eq(x.zm1 * x.sram_zs + x.ym1 * x.sram_ys + d.row_bytes),
            total.eq(d.row_bytes * d.rows * d.planes),
            x.ext_row.eq(x.ym1 * x.axi_ys + d.row_bytes),
            list_end.eq(d.index_addr + (d.planes << _log2(INDEX_BYTES))),
        ]
        bad_len = (d.row_bytes == 0) | (d.rows == 0) | (d.planes == 0) | (total > c.max_bytes)
        misaligned = ((d.src - d.dst)[:lw] != 0) | \
            ((d.rows > 1) & ((d.src_ystride - d.dst_ystride)[:lw] != 0)) | \
            ((d.planes > 1) & ((d.src_zstride - d.dst_zstride)[:lw] != 0)) | \
            (d.index & ((d.index_addr[:_log2(INDEX_BYTES)] != 0) | (x.axi_zs[:lw] != 0)))
        axi_out = Mux(d.index,
                      (d.index_addr < self.i_win_base) | (list_end > self.i_win_limit),
                      (x.axi_base < self.i_win_base) | (x.axi_base + ext_axi > self.i_win_limit))
        window = axi_out | (x.sram_base + ext_sram > c.sram_bytes)
        x.check = Mux(bad_len, DmaError.BAD_LENGTH,
                      Mux(misaligned, DmaError.MISALIGNED,
                          Mux(window, DmaError.WINDOW, DmaError.OK)))

    # --- per-descriptor bookkeeping queues (descs_in_flight deep) ----------------------
    # cq: {tag, check code} of every accepted descriptor, in order (the completions)
    # bc: bursts issued by each descriptor whose address generation has ended
    # rq: final code of each descriptor whose bursts have all completed
    def _bookkeeping(self, m, x):
        c = self.cfg
        K = c.descs_in_flight
        x.nb = max(c.max_bytes, 1).bit_length() + 1        # a burst carries >= 1 byte
        x.cq_l = data.StructLayout({"tag": FIELD_BITS["tag"], "code": ERR_BITS})
        m.submodules.cq = x.cq = Queue(x.cq_l, K)
        # bursts of a descriptor (index reads included) and its own end code (WINDOW:
        # an indexed plane outside the window)
        x.bc_l = data.StructLayout({"n": x.nb, "code": ERR_BITS})
        m.submodules.bc = x.bc = Queue(x.bc_l, K)
        m.submodules.rq = x.rq = Queue(ERR_BITS, K)
        # shared by the address generator, the data paths and the completion side
        x.outstanding = Signal(range(c.max_outstanding + 1), name="outstanding")
        x.dp_store = Signal(name="dp_store")        # direction of every burst in flight
        x.run = Signal(name="run")                  # the front end is generating bursts
        x.pend = Signal(range(K + 1), name="pend")  # generation ended, not yet retired
        x.c_err = Signal(ERR_BITS, name="c_err")    # first error of the oldest descriptor
        x.c_err_seen = Signal(name="c_err_seen")    # with bursts outstanding
        # indexed descriptors (the _index section drives these)
        x.pv = Signal(name="pv")                    # the plane's AXI base is known
        x.want_idx = Signal(name="want_idx")        # an index read should issue now
        x.plane_stop = Signal(name="plane_stop")    # this plane leaves the window
        x.nb_ok = Signal(name="nb_ok")              # the next plane's base is queued, in window
        x.nb_base = Signal(32, name="nb_base")
        x.iaddr = Signal(32, name="iaddr")          # address of the next index read
        x.idx_quiet = Signal(name="idx_quiet")      # no index read in flight or buffered
        x.idx_go = Signal(name="idx_go")            # the address register takes an index read
        x.row_go = Signal(name="row_go")            # ... or the next data burst

    # --- address generator: bursts of the descriptor in `d` -----------------------------
    def _address_generator(self, m, x):
        c, W = self.cfg, self.W
        lw, chunk = _log2(W), burst_chunk(c, W)
        lc, ax, d = _log2(chunk), self.m_axi, x.d
        x.a_row, x.s_row, x.a_plane, x.s_plane, x.off = (
            Signal(32, name=n) for n in ("a_row", "s_row", "a_plane", "s_plane", "off"))
        x.yi = Signal(FIELD_BITS["rows"], name="yi")
        x.zi = Signal(FIELD_BITS["planes"], name="zi")
        x.gcnt = Signal(x.nb, name="gcnt")     # bursts issued by the generating descriptor
        cur_a, cur_s, rem = Signal(32), Signal(32), Signal(32)
        to_b, nbytes, beats = Signal(lc + 1), Signal(32), Signal(lc - lw + 2)
        m.d.comb += [
            cur_a.eq(x.a_row + x.off), cur_s.eq(x.s_row + x.off), rem.eq(d.row_bytes - x.off),
            to_b.eq(chunk - cur_a[:lc]), nbytes.eq(Mux(rem < to_b, rem, to_b)),
            beats.eq((cur_a[:lw] + nbytes + (W - 1)) >> lw),
        ]
        # what the data paths need of each burst, in issue order
        swb = self.sram_addr_bits
        x.info_l = data.StructLayout({"sword": swb, "first": max(lw, 1), "last": max(lw, 1),
                                      "beats_m1": LEN_BITS, "idx": 1})
        m.submodules.info = x.info = info = Queue(x.info_l, c.max_outstanding)
        m.d.comb += [info.i.payload.sword.eq(cur_s[lw:]), info.i.payload.first.eq(cur_a[:lw]),
                     info.i.payload.last.eq((cur_a + nbytes - 1)[:lw]),
                     info.i.payload.beats_m1.eq(Mux(x.idx_go, 0, beats - 1)),
                     info.i.payload.idx.eq(x.idx_go)]
        # AXI address channel register (valid held until accepted, as AXI requires); it
        # may still hold the last burst of a descriptor after the next one was latched,
        # so the channel follows dp_store, not the descriptor register
        x.ax_valid = ax_valid = Signal(name="ax_valid")
        x.ax_idx = Signal(name="ax_idx")    # the register holds an index read (AR always)
        ax_addr, ax_len = Signal(32), Signal(LEN_BITS)
        ax_store = x.dp_store & ~x.ax_idx
        ax_fire = ax_valid & Mux(ax_store, ax.awready, ax.arready)
        m.d.comb += [
            ax.araddr.eq(ax_addr), ax.arlen.eq(ax_len), ax.arsize.eq(lw),
            ax.arburst.eq(Burst.INCR), ax.arid.eq(0), ax.arvalid.eq(ax_valid & ~ax_store),
            ax.awaddr.eq(ax_addr), ax.awlen.eq(ax_len), ax.awsize.eq(lw),
            ax.awburst.eq(Burst.INCR), ax.awid.eq(0), ax.awvalid.eq(ax_valid & ax_store),
        ]
        x.gen_err = x.run & (x.pend == 0) & x.c_err_seen    # the generating descriptor failed
        free = ((~ax_valid | ax_fire) & x.run & ~x.gen_err &
                (x.outstanding < c.max_outstanding) & info.i.ready)
        m.d.comb += [x.idx_go.eq(free & x.want_idx),                  # index reads first
                     x.row_go.eq(free & x.pv & ~x.want_idx & ~x.plane_stop)]
        x.load_ax = load_ax = x.idx_go | x.row_go
        last_burst = (nbytes == rem) & (x.yi == x.ym1) & (x.zi == x.zm1)
        x.plane_end = x.row_go & (nbytes == rem) & (x.yi == x.ym1)
        x.run_end = x.run & ((x.row_go & last_burst) | x.gen_err | x.plane_stop)
        m.d.comb += [info.i.valid.eq(x.row_go | (x.idx_go & ~x.dp_store)),
                     x.bc.i.valid.eq(x.run_end), x.bc.i.payload.n.eq(x.gcnt + load_ax),
                     x.bc.i.payload.code.eq(Mux(x.plane_stop, DmaError.WINDOW, DmaError.OK))]
        m.d.sync += x.gcnt.eq(x.gcnt + load_ax)
        self._advance(m, x, ax_fire, cur_a, beats, nbytes, rem, ax_addr, ax_len)

    def _advance(self, m, x, ax_fire, cur_a, beats, nbytes, rem, ax_addr, ax_len):
        """Load the address register (an index read, or the next burst: then step
        (offset, row, plane))."""
        with m.If(x.idx_go):
            m.d.sync += [x.ax_valid.eq(1), x.ax_idx.eq(1), ax_addr.eq(x.iaddr), ax_len.eq(0)]
        with m.Elif(x.row_go):
            m.d.sync += [x.ax_valid.eq(1), x.ax_idx.eq(0), ax_addr.eq(cur_a),
                         ax_len.eq(beats - 1)]
            with m.If(nbytes == rem):
                m.d.sync += x.off.eq(0)
                with m.If(x.yi == x.ym1):
                    m.d.sync += x.yi.eq(0)
                    with m.If((x.zi != x.zm1) & x.d.index):
                        # the next plane's AXI base comes from its index (_index): at
                        # once if it is queued, else the generator waits (pv = 0)
                        m.d.sync += [x.zi.eq(x.zi + 1), x.pv.eq(x.nb_ok),
                                     x.a_row.eq(x.nb_base),
                                     x.s_plane.eq(x.s_plane + x.sram_zs),
                                     x.s_row.eq(x.s_plane + x.sram_zs)]
                    with m.Elif(x.zi != x.zm1):
                        m.d.sync += [x.zi.eq(x.zi + 1), x.a_plane.eq(x.a_plane + x.axi_zs),
                                     x.a_row.eq(x.a_plane + x.axi_zs),
                                     x.s_plane.eq(x.s_plane + x.sram_zs),
                                     x.s_row.eq(x.s_plane + x.sram_zs)]
                with m.Else():
                    m.d.sync += [x.yi.eq(x.yi + 1), x.a_row.eq(x.a_row + x.axi_ys),
                                 x.s_row.eq(x.s_row + x.sram_ys)]
            with m.Else():
                m.d.sync += x.off.eq(x.off + nbytes)
        with m.Elif(ax_fire):
            m.d.sync += x.ax_valid.eq(0)

    def _strobe(self, beat, info):
        """Byte strobe of beat ``beat`` of the burst described by ``info``."""
        W, lw = self.W, _log2(self.W)
        lo = Mux(beat == 0, info.first, 0)
        hi = Mux(beat == info.beats_m1, info.last, W - 1)
        lanes = Const((1 << W) - 1, W)
        return ((lanes << lo)[:W]) & (lanes >> (W - 1 - hi)[:lw + 1])[:W]

    # --- LOAD data path: R beats -> SRAM writes (registered one cycle) ------------------
    def _load_path(self, m, x):
        ax, ih = self.m_axi, x.info.o.payload
        x.rbeat = Signal(LEN_BITS, name="rbeat")
        x.r_take = x.info.o.valid & ax.rvalid & ax.rready & ~x.dp_store
        x.r_end = x.r_take & (x.rbeat == ih.beats_m1)
        m.d.comb += ax.rready.eq(1)
        with m.If(x.r_take):
            m.d.sync += x.rbeat.eq(Mux(x.rbeat == ih.beats_m1, 0, x.rbeat + 1))

    # --- STORE data path: SRAM reads -> W beats ------------------------------------------
    def _store_path(self, m, x):
        ax, ih, W = self.m_axi, x.info.o.payload, self.W
        wl = data.StructLayout({"data": 8 * W, "strb": W, "last": 1})
        m.submodules.wf = x.wf = wf = Queue(wl, 4)
        x.sbeat = Signal(LEN_BITS, name="sbeat")
        x.inflight = Signal(name="inflight")    # an SRAM read whose data arrives now
        pend_strb, pend_last = Signal(W), Signal()
        x.can_read = x.dp_store & x.info.o.valid & (wf.level + x.inflight < 3)
        x.s_end = x.can_read & (x.sbeat == ih.beats_m1)
        m.d.sync += x.inflight.eq(x.can_read)
        with m.If(x.can_read):
            m.d.sync += [x.sbeat.eq(Mux(x.sbeat == ih.beats_m1, 0, x.sbeat + 1)),
                         pend_strb.eq(self._strobe(x.sbeat, ih)),
                         pend_last.eq(x.sbeat == ih.beats_m1)]
        m.d.comb += [
            self.m_sram_rd.addr.eq(ih.sword + x.sbeat), self.m_sram_rd.en.eq(x.can_read),
            wf.i.payload.data.eq(self.m_sram_rd.data), wf.i.payload.strb.eq(pend_strb),
            wf.i.payload.last.eq(pend_last), wf.i.valid.eq(x.inflight),
            ax.wvalid.eq(wf.o.valid), ax.wdata.eq(wf.o.payload.data),
            ax.wstrb.eq(wf.o.payload.strb), ax.wlast.eq(wf.o.payload.last),
            wf.o.ready.eq(ax.wready), ax.bready.eq(1),
        ]
        x.b_take = ax.bvalid & ax.bready & x.dp_store & (x.outstanding != 0)
        # a STORE's R beats are its index reads (not in `info`: W beats never wait on them)
        x.r_idx_store = ax.rvalid & ax.rready & x.dp_store
        m.d.comb += x.info.o.ready.eq(x.r_end | x.s_end)
        x.burst_done = Signal(2, name="burst_done")
        m.d.comb += x.burst_done.eq(x.r_end + x.b_take + x.r_idx_store)
        m.d.sync += x.outstanding.eq(x.outstanding + x.load_ax - x.burst_done)

    # --- per-descriptor completion ---------------------------------------------------------
    # Bursts complete in issue order (one ID), so every response belongs to the oldest
    # descriptor with bursts outstanding. It retires when its completed bursts reach its
    # count in bc: `stale` if that happened in an earlier cycle (its count arrived late),
    # `fin` with this cycle's burst. In a stale cycle the response belongs to the next
    # descriptor and starts its record afresh.
    def _completion(self, m, x):
        ax, bc, W = self.m_axi, x.bc, self.W
        x.done_cnt = done_cnt = Signal(x.nb, name="done_cnt")   # its completed bursts
        bad_r = (x.r_take | x.r_idx_store) & (ax.rresp != Resp.OKAY)
        resp = Mux(bad_r, ax.rresp, ax.bresp)
        bad = bad_r | (x.b_take & (ax.bresp != Resp.OKAY))
        code_now = Mux(resp == Resp.DECERR, DmaError.DECERR, DmaError.SLVERR)
        stale = bc.o.valid & (done_cnt == bc.o.payload.n)
        fin = bc.o.valid & ~stale & ((done_cnt + x.burst_done) == bc.o.payload.n)
        retire = stale | fin
        ctx_err_seen = x.c_err_seen & ~stale          # error state of this cycle's response
        # registered push: the completion leaves after the last SRAM write (below)
        err = Mux(stale | x.c_err_seen | ~bad, x.c_err, code_now)
        m.d.sync += [x.rq.i.valid.eq(retire),
                     x.rq.i.payload.eq(Mux(err != DmaError.OK, err, bc.o.payload.code))]
        m.d.comb += bc.o.ready.eq(retire)
        m.d.sync += x.pend.eq(x.pend + x.run_end - retire)
        with m.If(stale):
            m.d.sync += [done_cnt.eq(x.burst_done), x.c_err_seen.eq(bad),
                         x.c_err.eq(Mux(bad, code_now, DmaError.OK))]
        with m.Elif(fin):
            m.d.sync += [done_cnt.eq(0), x.c_err_seen.eq(0), x.c_err.eq(DmaError.OK)]
        with m.Else():
            m.d.sync += done_cnt.eq(done_cnt + x.burst_done)
            with m.If(bad & ~x.c_err_seen):
                m.d.sync += [x.c_err_seen.eq(1), x.c_err.eq(code_now)]
        # SRAM write of an R beat, one cycle after it; never for a failing descriptor
        sw_we = Signal()
        wr = self.m_sram_wr
        m.d.sync += [sw_we.eq(x.r_take & (ax.rresp == Resp.OKAY) & ~ctx_err_seen &
                           ~x.info.o.payload.idx),
                     wr.addr.eq(x.info.o.payload.sword + x.rbeat), wr.data.eq(ax.rdata)]
        strb = Signal(W)
        m.d.sync += strb.eq(self._strobe(x.rbeat, x.info.o.payload))
        m.d.comb += wr.en.eq(Mux(sw_we, strb, 0))
        # completions in descriptor order: a rejected descriptor's code is final at once,
        # an accepted one waits for its result in rq
        cq = x.cq.o
        need_rq = cq.payload.code == DmaError.OK
        done_fire = self.o_done.valid & self.o_done.ready
        m.d.comb += [
            self.o_done.valid.eq(cq.valid & (~need_rq | x.rq.o.valid)),
            self.o_done.payload.tag.eq(cq.payload.tag),
            self.o_done.payload.err.eq(Mux(need_rq, x.rq.o.payload, cq.payload.code)),
            cq.ready.eq(done_fire), x.rq.o.ready.eq(done_fire & need_rq),
        ]

    # --- indexed descriptors: index reads, index queue, plane pipeline -------------------
    # Reads (one beat each, every index of the list in it that is needed) issue while
    # `want_idx`: the next index to read is below `ilim` = lookahead + planes started.
    # Their beats arrive in order (one ID): on a LOAD among the data beats (`info`
    # entries with `idx`), on a STORE alone on R; `iq` keeps each beat with its first
    # and last index word. The plane pipeline takes one index per cycle (product with
    # the zstride), checks the plane's rows against the window and queues {base, stop}
    # in `bq`. A plane starts (pops `bq`) when every read below its `ilim` is issued,
    # so the burst order does not depend on stalls (models.dma.plan_bursts).
    def _index(self, m, x):
        W, d, ax = self.W, x.d, self.m_axi
        lw, per = _log2(W), W // INDEX_BYTES
        D = index_lookahead(self.cfg, W)
        wbits = max(lw - 2, 1)                                 # index word in a beat
        iq_l = data.StructLayout({"data": 8 * W, "first": wbits, "last": wbits})
        m.submodules.iq = iq = Queue(iq_l, -(-D // per) + 2)
        bq_l = data.StructLayout({"base": 32, "stop": 1})
        m.submodules.bq = bq = Queue(bq_l, 4)
        P = FIELD_BITS["planes"] + 1
        iz = Signal(P, name="iz")                              # next index to read
        ilim = Signal(range(D + (1 << FIELD_BITS["planes"]) + 1), name="ilim")
        ifl = Signal(range(self.cfg.max_outstanding + 1), name="ifl")   # reads in flight
        ra = Signal(max(lw, 1), name="ra")                     # next arriving index: lane
        rleft = Signal(P, name="rleft")                        # ... indices still to come

        def words(lane, left):
            """(first word, last word, count) of a beat read at byte lane ``lane``."""
            if per == 1:
                return Const(0, wbits), Const(0, wbits), Const(1, 2)
            first = lane[2:lw]
            n = Mux(left < per - first, left, per - first)
            return first, (first + n - 1)[:wbits], n
        _, _, n_issue = words(x.iaddr, d.planes - iz)
        r_first, r_last, n_recv = words(ra, rleft)
        beat = (x.r_take & x.info.o.payload.idx) | x.r_idx_store
        m.d.comb += [
            x.want_idx.eq(x.run & d.index & (iz < d.planes) & (iz < ilim)),
            iq.i.valid.eq(beat & (ax.rresp == Resp.OKAY)), iq.i.payload.data.eq(ax.rdata),
            iq.i.payload.first.eq(r_first), iq.i.payload.last.eq(r_last),
        ]
        m.d.sync += ifl.eq(ifl + x.idx_go - beat)
        with m.If(x.idx_go):
            m.d.sync += [iz.eq(iz + n_issue), x.iaddr.eq(x.iaddr + (n_issue << 2))]
        with m.If(beat):
            m.d.sync += [ra.eq(ra + (n_recv << 2)), rleft.eq(rleft - n_recv)]
        # plane pipeline: take (index x zstride) -> check -> bq
        wp, wp_live = Signal(wbits, name="wp"), Signal(name="wp_live")
        pm = Signal(name="pm")                                 # product register valid
        prod, lo = Signal(64, name="prod"), Signal(66)
        word = Mux(wp_live, wp, iq.o.payload.first)
        take = x.run & d.index & iq.o.valid & (bq.level + pm < 4)
        last_word = word == iq.o.payload.last
        m.d.comb += [iq.o.ready.eq((take & last_word) | ~x.run), lo.eq(x.axi_base + prod),
                     bq.i.valid.eq(pm & x.run), bq.i.payload.base.eq(lo[:32]),
                     bq.i.payload.stop.eq((lo < self.i_win_base) |
                                          (lo + x.ext_row > self.i_win_limit))]
        m.d.sync += pm.eq(take)
        with m.If(take):
            m.d.sync += [prod.eq(iq.o.payload.data.word_select(word, 32) * x.axi_zs),
                         wp.eq(word + 1), wp_live.eq(~last_word)]
        # plane start: the first plane or after a gap (pv = 0), or at the previous
        # plane's last burst (_advance)
        start = x.run & d.index & ~x.pv & bq.o.valid & ~x.want_idx
        seam = x.plane_end & d.index & (x.zi != x.zm1) & x.nb_ok
        m.d.comb += [x.nb_ok.eq(bq.o.valid & ~bq.o.payload.stop), x.nb_base.eq(bq.o.payload.base),
                     x.plane_stop.eq(start & bq.o.payload.stop),
                     bq.o.ready.eq((start & ~bq.o.payload.stop) | seam | ~x.run),
                     x.idx_quiet.eq((ifl == 0) & ~iq.o.valid & ~bq.o.valid & ~pm)]
        with m.If(start & ~bq.o.payload.stop):
            m.d.sync += [x.a_row.eq(bq.o.payload.base), x.pv.eq(1)]
        with m.If((start & ~bq.o.payload.stop) | seam):
            m.d.sync += ilim.eq(ilim + 1)
        x.iq_reset = [iz.eq(0), ilim.eq(D), pm.eq(0), wp_live.eq(0),
                      ra.eq(d.index_addr[:max(lw, 1)]), rleft.eq(d.planes)]

    # --- front end: fetch -> check -> generate ---------------------------------------------
    # explicit state register and `assign`-style decodes: an FSM's always @* decode is
    # never evaluated by Icarus when the state never changes after time 0
    def _front_end(self, m, x):
        d, dq, cq = x.d, x.dq.o, x.cq.i
        drained = ~x.ax_valid & (x.outstanding == 0) & ~x.info.o.valid & ~x.wf.o.valid & \
            ~x.inflight
        IDLE, CHECK, RUN = _FrontEnd
        state = Signal(2, name="state", decoder=_FrontEnd)    # decoder: named in make waves
        rejected = x.check != DmaError.OK
        # an indexed STORE's index reads must not overtake earlier stores' responses
        dir_ok = ((d.dir == x.dp_store) & ~(d.index & (d.dir == DmaDir.STORE))) | drained
        dir_ok &= x.idx_quiet
        accept = (state == CHECK) & cq.ready & (rejected | dir_ok)
        m.d.comb += [cq.payload.tag.eq(d.tag), cq.payload.code.eq(x.check),
                     cq.valid.eq(accept)]
        # the next descriptor is fetched in the cycle the current one stops generating
        fetch = dq.valid & ((state == IDLE) | x.run_end | (accept & rejected))
        m.d.comb += [x.run.eq(state == RUN), dq.ready.eq(fetch)]
        with m.If(x.run_end | (accept & rejected)):
            m.d.sync += state.eq(IDLE)
        with m.If(accept & ~rejected):
            m.d.sync += [x.a_row.eq(x.axi_base), x.a_plane.eq(x.axi_base),
                         x.s_row.eq(x.sram_base), x.s_plane.eq(x.sram_base), x.off.eq(0),
                         x.yi.eq(0), x.zi.eq(0), x.gcnt.eq(0), x.dp_store.eq(d.dir),
                         x.pv.eq(~d.index), x.iaddr.eq(d.index_addr), state.eq(RUN),
                         *x.iq_reset]
        with m.If(fetch):
            m.d.sync += [d.eq(dq.payload), state.eq(CHECK)]
        m.d.comb += self.o_busy.eq(dq.valid | (state != IDLE) | x.cq.o.valid | ~x.idx_quiet)
