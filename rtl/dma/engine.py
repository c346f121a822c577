"""Descriptor-driven DMA engine: 1D/2D/3D strided copies between AXI4 (HBM) and SRAM."""
from __future__ import annotations

import enum

from amaranth import Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from models.config import DmaConfig
from rtl.mem.axi import BURST_INCR, RESP_DECERR, RESP_OKAY, AxiView, axi4_members

__all__ = ["DmaEngine", "DmaError", "DmaDir", "desc_layout", "done_layout", "burst_chunk",
           "DESCS_IN_FLIGHT"]

# Descriptors accepted but not yet completed (checked, generating, or with bursts in
# flight). With max_outstanding bursts shared by all of them, 8 keeps a stream of
# >= 1 KiB descriptors data-bound at 100-200 cycle latency; a DmaConfig field would
# make it tunable.
DESCS_IN_FLIGHT = 8


class DmaError(enum.IntEnum):
    """Completion codes (``o_done.payload.err``); checks run in this order."""
    OK = 0
    DECERR = 1          # an AXI response was DECERR
    SLVERR = 2          # an AXI response was SLVERR
    WINDOW = 3          # AXI side outside [i_win_base, i_win_limit) or SRAM side outside SRAM
    BAD_LENGTH = 4      # row_bytes, rows or planes is 0, or the total exceeds max_bytes
    MISALIGNED = 5      # source and destination differ in byte lane (mod data_bytes)


class DmaDir(enum.IntEnum):
    LOAD = 0            # AXI (HBM) -> SRAM
    STORE = 1           # SRAM -> AXI (HBM)


def desc_layout() -> data.StructLayout:
    """One descriptor: copy ``planes`` x ``rows`` rows of ``row_bytes`` bytes.

    Row (z, y) is read at ``src + z*src_zstride + y*src_ystride`` and written at
    ``dst + z*dst_zstride + y*dst_ystride``; rows are copied in z-major, y-minor order.
    ``src``/``dst`` are AXI or SRAM byte addresses according to ``dir``.
    """
    return data.StructLayout({
        "dir": 1, "tag": 8, "src": 32, "dst": 32, "row_bytes": 32, "rows": 16, "planes": 16,
        "src_ystride": 32, "dst_ystride": 32, "src_zstride": 32, "dst_zstride": 32,
    })


def done_layout() -> data.StructLayout:
    """Completion of one descriptor: its ``tag`` and a :class:`DmaError` code."""
    return data.StructLayout({"tag": 8, "err": 4})


def burst_chunk(config: DmaConfig, data_bytes: int) -> int:
    """Bursts never cross a multiple of this many bytes: min(4 KiB, max_burst_beats * W)."""
    return min(4096, config.max_burst_beats * data_bytes)


def _log2(x):
    return x.bit_length() - 1


class DmaEngine(wiring.Component):
    """DMA engine with one AXI4 master port (``m_axi_*``) and one SRAM port.

    Parameters
    ----------
    config : DmaConfig
    data_bytes : int
        Width of the AXI data bus and of an SRAM word.
    id_bits : int
        AXI ID width (the engine always uses ID 0, so responses arrive in order).

    Members
    -------
    i_desc : In(stream.Signature(desc_layout()))   descriptor queue (``desc_depth`` deep)
    o_done : Out(stream.Signature(done_layout()))  one completion per descriptor, in order
    i_win_base, i_win_limit : In(32)   AXI window ``[base, limit)``; keep stable while busy
    o_sram_addr/we/wstrb/wdata/re, i_sram_rdata : SRAM port, word addressed, byte strobes,
        read data valid the cycle after ``o_sram_re``
    o_busy : Out(1)

    Behaviour: a descriptor is checked first (:class:`DmaError` order: BAD_LENGTH,
    MISALIGNED, WINDOW); a rejected descriptor touches nothing. Otherwise each row is cut
    into INCR bursts of full-width beats that never cross a multiple of
    :func:`burst_chunk` (so never 4 KiB), first/last beats strobed to the row's bytes.
    Up to ``max_outstanding`` bursts are in flight, and they may belong to up to
    :data:`DESCS_IN_FLIGHT` consecutive descriptors: the next descriptor is checked and
    starts issuing while earlier bursts are still outstanding, as long as it copies in
    the same direction (a change of direction waits until everything has drained, so
    the SRAM port is never shared and a STORE sees the SRAM writes of an earlier LOAD).
    Completion is tracked per descriptor in order (burst count per descriptor, first
    error code per descriptor). After an error response the failing descriptor issues
    no new burst and, for a LOAD, writes no more SRAM words; its outstanding bursts
    drain and the first error code is reported. Later descriptors are not affected.

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
        members = axi4_members("m_axi", addr_bits=32, data_bytes=data_bytes, id_bits=id_bits,
                               master=True)
        members.update({
            "i_desc": In(stream.Signature(desc_layout())),
            "o_done": Out(stream.Signature(done_layout())),
            "i_win_base": In(32), "i_win_limit": In(32),
            "o_sram_addr": Out(range(self.sram_words)), "o_sram_we": Out(1),
            "o_sram_wstrb": Out(data_bytes), "o_sram_wdata": Out(8 * data_bytes),
            "o_sram_re": Out(1), "i_sram_rdata": In(8 * data_bytes),
            "o_busy": Out(1),
        })
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        c, W = self.cfg, self.W
        lw = _log2(W)
        chunk = burst_chunk(c, W)
        lc = _log2(chunk)
        ax = AxiView(self, "m_axi")
        maxo = c.max_outstanding
        K = DESCS_IN_FLIGHT
        swb = _log2(self.sram_words) if self.sram_words > 1 else 1

        # --- descriptor queue --------------------------------------------------------
        dl = desc_layout()
        m.submodules.dq = dq = SyncFIFO(width=dl.size, depth=c.desc_depth)
        m.d.comb += [dq.w_data.eq(self.i_desc.payload), dq.w_en.eq(self.i_desc.valid),
                     self.i_desc.ready.eq(dq.w_rdy)]
        d = Signal(dl)                  # the descriptor being checked / generated
        store = d.dir == 1

        # --- check (combinational on the latched descriptor) -------------------------
        axi_base = Mux(store, d.dst, d.src)
        sram_base = Mux(store, d.src, d.dst)
        axi_ys, sram_ys = Mux(store, d.dst_ystride, d.src_ystride), \
            Mux(store, d.src_ystride, d.dst_ystride)
        axi_zs, sram_zs = Mux(store, d.dst_zstride, d.src_zstride), \
            Mux(store, d.src_zstride, d.dst_zstride)
        ym1, zm1 = Signal(16), Signal(16)
        m.d.comb += [ym1.eq(d.rows - 1), zm1.eq(d.planes - 1)]
        ext_axi = Signal(64)
        ext_sram = Signal(64)
        total = Signal(64)
        m.d.comb += [
            ext_axi.eq(zm1 * axi_zs + ym1 * axi_ys + d.row_bytes),
            ext_sram.eq(zm1 * sram_zs + ym1 * sram_ys + d.row_bytes),
            total.eq(d.row_bytes * d.rows * d.planes),
        ]
        bad_len = (d.row_bytes == 0) | (d.rows == 0) | (d.planes == 0) | (total > c.max_bytes)
        misaligned = ((d.src - d.dst)[:lw] != 0) | \
            ((d.rows > 1) & ((d.src_ystride - d.dst_ystride)[:lw] != 0)) | \
            ((d.planes > 1) & ((d.src_zstride - d.dst_zstride)[:lw] != 0))
        window = (axi_base < self.i_win_base) | (axi_base + ext_axi > self.i_win_limit) | \
            (sram_base + ext_sram > c.sram_bytes)
        check = Mux(bad_len, DmaError.BAD_LENGTH,
                    Mux(misaligned, DmaError.MISALIGNED,
                        Mux(window, DmaError.WINDOW, DmaError.OK)))

        # --- per-descriptor bookkeeping queues (all K deep, see the class docstring) --
        # cq: {tag, check code} of every accepted descriptor, in order (the completions)
        # bc: bursts issued by each descriptor whose address generation has ended
        # rq: final code of each descriptor whose bursts have all completed
        nb = max(c.max_bytes, 1).bit_length() + 1        # a burst carries >= 1 byte
        cq_l = data.StructLayout({"tag": 8, "code": 4})
        m.submodules.cq = cq = SyncFIFO(width=cq_l.size, depth=K)
        m.submodules.bc = bc = SyncFIFO(width=nb, depth=K)
        m.submodules.rq = rq = SyncFIFO(width=4, depth=K)

        # --- address generator registers --------------------------------------------
        a_row, s_row, a_plane, s_plane, off = (Signal(32, name=n) for n in
                                               ("a_row", "s_row", "a_plane", "s_plane", "off"))
        yi, zi = Signal(16), Signal(16)
        gcnt = Signal(nb)               # bursts issued by the generating descriptor
        outstanding = Signal(range(maxo + 1))
        dp_store = Signal()             # direction of every burst in flight

        cur_a = Signal(32)
        cur_s = Signal(32)
        rem = Signal(32)
        to_b = Signal(lc + 1)
        nbytes = Signal(32)
        beats = Signal(lc - lw + 2)
        m.d.comb += [
            cur_a.eq(a_row + off), cur_s.eq(s_row + off), rem.eq(d.row_bytes - off),
            to_b.eq(chunk - cur_a[:lc]),
            nbytes.eq(Mux(rem < to_b, rem, to_b)),
            beats.eq((cur_a[:lw] + nbytes + (W - 1)) >> lw),
        ]

        info_l = data.StructLayout({"sword": swb, "first": max(lw, 1), "last": max(lw, 1),
                                    "beats_m1": 8})
        m.submodules.info = info = SyncFIFO(width=info_l.size, depth=maxo)
        info_in = Signal(info_l)
        ih = info_l(info.r_data)
        last_byte = (cur_a + nbytes - 1)[:lw]
        m.d.comb += [info_in.sword.eq(cur_s[lw:]), info_in.first.eq(cur_a[:lw]),
                     info_in.last.eq(last_byte), info_in.beats_m1.eq(beats - 1),
                     info.w_data.eq(info_in)]

        # AXI address channel register (valid held until accepted, as AXI requires); it
        # may still hold the last burst of a descriptor after the next one was latched,
        # so the channel follows dp_store, not the descriptor register
        ax_valid, ax_addr, ax_len = Signal(), Signal(32), Signal(8)
        ax_ready = Mux(dp_store, ax.awready, ax.arready)
        ax_fire = ax_valid & ax_ready
        m.d.comb += [
            ax.araddr.eq(ax_addr), ax.arlen.eq(ax_len), ax.arsize.eq(lw),
            ax.arburst.eq(BURST_INCR), ax.arid.eq(0), ax.arvalid.eq(ax_valid & ~dp_store),
            ax.awaddr.eq(ax_addr), ax.awlen.eq(ax_len), ax.awsize.eq(lw),
            ax.awburst.eq(BURST_INCR), ax.awid.eq(0), ax.awvalid.eq(ax_valid & dp_store),
        ]

        # completion side: the oldest descriptor with bursts still outstanding
        done_cnt = Signal(nb)           # its completed bursts
        c_err, c_err_seen = Signal(4), Signal()     # its first error
        pend = Signal(range(K + 1))     # generation ended, not yet retired

        run = Signal()
        gen_err = run & (pend == 0) & c_err_seen    # the generating descriptor failed
        load_ax = (~ax_valid | ax_fire) & run & ~gen_err & (outstanding < maxo) & info.w_rdy
        last_burst = (nbytes == rem) & (yi == ym1) & (zi == zm1)
        run_end = run & ((load_ax & last_burst) | gen_err)
        m.d.comb += [info.w_en.eq(load_ax), bc.w_en.eq(run_end), bc.w_data.eq(gcnt + load_ax)]
        m.d.sync += gcnt.eq(gcnt + load_ax)
        with m.If(load_ax):
            m.d.sync += [ax_valid.eq(1), ax_addr.eq(cur_a), ax_len.eq(beats - 1)]
            with m.If(nbytes == rem):
                m.d.sync += off.eq(0)
                with m.If(yi == ym1):
                    m.d.sync += yi.eq(0)
                    with m.If(zi != zm1):
                        m.d.sync += [zi.eq(zi + 1), a_plane.eq(a_plane + axi_zs),
                                     a_row.eq(a_plane + axi_zs), s_plane.eq(s_plane + sram_zs),
                                     s_row.eq(s_plane + sram_zs)]
                with m.Else():
                    m.d.sync += [yi.eq(yi + 1), a_row.eq(a_row + axi_ys),
                                 s_row.eq(s_row + sram_ys)]
            with m.Else():
                m.d.sync += off.eq(off + nbytes)
        with m.Elif(ax_fire):
            m.d.sync += ax_valid.eq(0)

        def strobe(beat, info_view):
            lo = Mux(beat == 0, info_view.first, 0)
            hi = Mux(beat == info_view.beats_m1, info_view.last, W - 1)
            lanes = Const((1 << W) - 1, W)
            return ((lanes << lo)[:W]) & (lanes >> (W - 1 - hi)[:lw + 1])[:W]

        # --- LOAD data path: R beats -> SRAM writes ----------------------------------
        rbeat = Signal(8)
        r_fire = ax.rvalid & ax.rready
        r_take = r_fire & info.r_rdy & ~dp_store
        r_end = r_take & (rbeat == ih.beats_m1)
        sw_addr, sw_we, sw_strb, sw_data = Signal(swb), Signal(), Signal(W), Signal(8 * W)
        m.d.comb += ax.rready.eq(1)
        with m.If(r_take):
            m.d.sync += rbeat.eq(Mux(rbeat == ih.beats_m1, 0, rbeat + 1))

        # --- STORE data path: SRAM reads -> W beats -----------------------------------
        wl = data.StructLayout({"data": 8 * W, "strb": W, "last": 1})
        m.submodules.wf = wf = SyncFIFO(width=wl.size, depth=4)
        sbeat = Signal(8)
        inflight = Signal()
        pend_strb, pend_last = Signal(W), Signal()
        can_read = dp_store & info.r_rdy & (wf.level + inflight < 3)
        s_end = can_read & (sbeat == ih.beats_m1)
        sr_addr = Signal(swb)
        m.d.comb += sr_addr.eq(ih.sword + sbeat)
        m.d.sync += inflight.eq(can_read)
        with m.If(can_read):
            m.d.sync += [sbeat.eq(Mux(sbeat == ih.beats_m1, 0, sbeat + 1)),
                         pend_strb.eq(strobe(sbeat, ih)), pend_last.eq(sbeat == ih.beats_m1)]
        w_in = Signal(wl)
        m.d.comb += [w_in.data.eq(self.i_sram_rdata), w_in.strb.eq(pend_strb),
                     w_in.last.eq(pend_last), wf.w_data.eq(w_in), wf.w_en.eq(inflight)]
        wh = wl(wf.r_data)
        m.d.comb += [ax.wvalid.eq(wf.r_rdy), ax.wdata.eq(wh.data), ax.wstrb.eq(wh.strb),
                     ax.wlast.eq(wh.last), wf.r_en.eq(ax.wready), ax.bready.eq(1)]
        b_take = ax.bvalid & ax.bready & dp_store & (outstanding != 0)

        m.d.comb += info.r_en.eq(r_end | s_end)
        burst_done = r_end | b_take
        m.d.sync += outstanding.eq(outstanding + load_ax - burst_done)

        # --- per-descriptor completion ------------------------------------------------
        # Bursts complete in issue order (one ID), so every response belongs to the
        # oldest descriptor with bursts outstanding. It retires when its completed
        # bursts reach its count in bc: `stale` if that happened in an earlier cycle
        # (its count arrived late), `fin` with this cycle's burst. In a stale cycle the
        # response belongs to the next descriptor and starts its record afresh.
        resp = Mux(dp_store, ax.bresp, ax.rresp)
        bad = ((r_take & (ax.rresp != RESP_OKAY)) | (b_take & (ax.bresp != RESP_OKAY)))
        code_now = Mux(resp == RESP_DECERR, DmaError.DECERR, DmaError.SLVERR)
        stale = bc.r_rdy & (done_cnt == bc.r_data)
        fin = bc.r_rdy & ~stale & ((done_cnt + burst_done) == bc.r_data)
        retire = stale | fin
        ctx_err_seen = c_err_seen & ~stale          # error state of this cycle's response
        rq_push, rq_code = Signal(), Signal(4)
        # registered push: the completion leaves after the last SRAM write (sw_we below)
        m.d.sync += [rq_push.eq(retire),
                     rq_code.eq(Mux(stale | c_err_seen | ~bad, c_err, code_now))]
        m.d.comb += [bc.r_en.eq(retire), rq.w_en.eq(rq_push), rq.w_data.eq(rq_code)]
        m.d.sync += pend.eq(pend + run_end - retire)
        with m.If(stale):
            m.d.sync += [done_cnt.eq(burst_done), c_err_seen.eq(bad),
                         c_err.eq(Mux(bad, code_now, DmaError.OK))]
        with m.Elif(fin):
            m.d.sync += [done_cnt.eq(0), c_err_seen.eq(0), c_err.eq(DmaError.OK)]
        with m.Else():
            m.d.sync += done_cnt.eq(done_cnt + burst_done)
            with m.If(bad & ~c_err_seen):
                m.d.sync += [c_err_seen.eq(1), c_err.eq(code_now)]
        m.d.sync += [sw_we.eq(r_take & (ax.rresp == RESP_OKAY) & ~ctx_err_seen),
                     sw_addr.eq(ih.sword + rbeat), sw_strb.eq(strobe(rbeat, ih)),
                     sw_data.eq(ax.rdata)]

        # completions in descriptor order: a rejected descriptor's code is final at once,
        # an accepted one waits for its result in rq
        ch = cq_l(cq.r_data)
        need_rq = ch.code == DmaError.OK
        done_fire = self.o_done.valid & self.o_done.ready
        m.d.comb += [
            self.o_done.valid.eq(cq.r_rdy & (~need_rq | rq.r_rdy)),
            self.o_done.payload.tag.eq(ch.tag),
            self.o_done.payload.err.eq(Mux(need_rq, rq.r_data, ch.code)),
            cq.r_en.eq(done_fire), rq.r_en.eq(done_fire & need_rq),
        ]

        # --- SRAM port -------------------------------------------------------------------
        m.d.comb += [
            self.o_sram_addr.eq(Mux(dp_store, sr_addr, sw_addr)), self.o_sram_re.eq(can_read),
            self.o_sram_we.eq(sw_we), self.o_sram_wstrb.eq(sw_strb),
            self.o_sram_wdata.eq(sw_data),
        ]

        # --- front end: fetch -> check -> generate ---------------------------------------
        drained = ~ax_valid & (outstanding == 0) & ~info.r_rdy & ~wf.r_rdy & ~inflight
        # explicit state register and `assign`-style decodes: an FSM's always @* decode
        # is never evaluated by Icarus when the state never changes after time 0
        IDLE, CHECK, RUN = range(3)
        state = Signal(2)
        rejected = check != DmaError.OK
        dir_ok = (d.dir == dp_store) | drained
        accept = (state == CHECK) & cq.w_rdy & (rejected | dir_ok)
        cq_in = Signal(cq_l)
        m.d.comb += [cq_in.tag.eq(d.tag), cq_in.code.eq(check),
                     cq.w_data.eq(cq_in), cq.w_en.eq(accept)]
        # the next descriptor is fetched in the cycle the current one stops generating
        fetch = dq.r_rdy & ((state == IDLE) | run_end | (accept & rejected))
        m.d.comb += [run.eq(state == RUN), dq.r_en.eq(fetch)]
        with m.If(run_end | (accept & rejected)):
            m.d.sync += state.eq(IDLE)
        with m.If(accept & ~rejected):
            m.d.sync += [a_row.eq(axi_base), a_plane.eq(axi_base), s_row.eq(sram_base),
                         s_plane.eq(sram_base), off.eq(0), yi.eq(0), zi.eq(0), gcnt.eq(0),
                         dp_store.eq(d.dir), state.eq(RUN)]
        with m.If(fetch):
            m.d.sync += [d.eq(dq.r_data), state.eq(CHECK)]
        m.d.comb += self.o_busy.eq(dq.r_rdy | (state != IDLE) | cq.r_rdy)
        return m
