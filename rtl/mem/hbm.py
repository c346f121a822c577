"""HBM controller stub: N pseudo-channels behind one AXI4 slave port.

:class:`HbmStub` is what makes bandwidth and latency real in every performance figure:
data comes back ``read_latency`` cycles after its address, at most ``bytes_per_cycle``
per channel, with at most ``max_outstanding`` bursts queued per channel. The analytic
model of its timing is :mod:`models.hbm`; docs/memory.md has the full contract.
"""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from models.config import HbmConfig
from rtl.mem.axi import (BURST_FIXED, BURST_INCR, RESP_DECERR, RESP_OKAY, RESP_SLVERR, AxiView,
                         axi4_members)
from rtl.lib.mux import select

__all__ = ["HbmChannel", "HbmStub", "USER_OK", "USER_SLVERR", "USER_POISON", "USER_DECERR",
           "ERR_OFF", "ERR_SLVERR", "ERR_POISON"]

# per-burst sideband from the router to a channel
USER_OK, USER_SLVERR, USER_POISON, USER_DECERR = 0, 1, 2, 3
# i_err_kind: error injection on [i_err_base, i_err_limit)
ERR_OFF, ERR_SLVERR, ERR_POISON = 0, 1, 2


def _log2(x: int) -> int:
    return x.bit_length() - 1


def _fifo(m, name, width, depth):
    f = SyncFIFO(width=max(width, 1), depth=depth)
    m.submodules[name] = f
    return f


class HbmChannel(wiring.Component):
    """One pseudo-channel: AXI4 slave on a local address space of ``channel_bytes``.

    Bursts are served in the order their addresses were accepted (reads and writes
    each in order), which satisfies AXI per-ID ordering for every ID. ``s_axi_aruser``
    / ``s_axi_awuser`` carry the router's verdict on the burst (``USER_*``).

    Timing
    ------
    * read: the first beat leaves no earlier than ``read_latency`` cycles after AR was
      accepted (+ ``row_miss_cycles`` on a row miss), then one beat per cycle unless
      throttled by the bandwidth limit or held by ``rready``;
    * write: B leaves ``write_latency`` (+ row miss) cycles after the last W beat;
    * bandwidth: a token bucket refilled by ``bytes_per_cycle`` per cycle, capped at one
      beat; an R or W beat costs ``data_bytes`` tokens (reads and writes share the
      channel, alternating priority when both wait).

    Backdoor: ``bd_*`` is a word-wide port (1-cycle read latency) for testbenches;
    a backdoor write takes the write port for that cycle (use when AXI is idle).
    """

    def __init__(self, config: HbmConfig):
        self.cfg = c = config
        W = c.data_bytes
        self.la = _log2(c.channel_bytes)
        self.words = c.store // W
        members = axi4_members("s_axi", addr_bits=self.la, data_bytes=W, id_bits=c.id_bits,
                               master=False)
        members.update({
            "s_axi_aruser": In(2), "s_axi_awuser": In(2),
            "bd_addr": In(range(self.words)), "bd_wdata": In(8 * W), "bd_we": In(1),
            "bd_rdata": Out(8 * W),
            "perf_rd_bytes": Out(32), "perf_wr_bytes": Out(32), "perf_busy": Out(32),
            "perf_stall": Out(32),
        })
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        c = self.cfg
        W, lw, la = c.data_bytes, _log2(c.data_bytes), self.la
        s = AxiView(self, "s_axi")
        maxo = c.max_outstanding

        m.submodules.mem = mem = Memory(shape=8 * W, depth=self.words, init=[])
        rd = mem.read_port()
        bd = mem.read_port()
        wr = mem.write_port(granularity=8)
        m.d.comb += [bd.addr.eq(self.bd_addr), self.bd_rdata.eq(bd.data)]

        now = Signal(32)
        m.d.sync += now.eq(now + 1)

        req = data.StructLayout({"id": c.id_bits, "addr": la, "len": 8, "size": 3, "burst": 2,
                                 "user": 2, "t": 32})

        def word(addr, beat, size, burst):
            off = Mux(burst == BURST_FIXED, 0, beat << size)
            return (addr + off)[lw:_log2(c.store)]

        # --- optional row-buffer timing ------------------------------------------
        # lookups through `select` (continuous assigns), not Array: see rtl/lib/mux.py
        lr, lb = _log2(c.row_bytes), _log2(c.banks)
        open_row = [Signal(max(la - lr - lb, 1), name=f"open_row{i}") for i in range(c.banks)]
        open_ok = [Signal(name=f"open_ok{i}") for i in range(c.banks)]

        def row_extra(addr, fire):
            """Row-miss penalty of a burst at ``addr``; its row is open after ``fire``."""
            if c.row_miss_cycles == 0:
                return Const(0, 12)
            bank = addr[lr:lr + lb] if lb else Const(0, 1)
            row = addr[lr + lb:] if la > lr + lb else Const(0, 1)
            miss = ~select(bank, open_ok) | (select(bank, open_row) != row)
            for i in range(c.banks):
                with m.If(fire & (bank == i)):
                    m.d.sync += [open_row[i].eq(row), open_ok[i].eq(1)]
            return Mux(miss, c.row_miss_cycles, 0)

        # --- bandwidth tokens (shared by R and W beats) --------------------------
        tok = Signal(range(2 * W + 1), init=W)
        tok_ok = tok >= W
        rd_go, wr_go = Signal(), Signal()
        last_rd = Signal()
        spent = Mux(rd_go | wr_go, W, 0)
        refill = tok + c.bytes_per_cycle - spent
        m.d.sync += tok.eq(Mux(refill > W, W, refill))
        with m.If(rd_go | wr_go):
            m.d.sync += last_rd.eq(rd_go)

        # --- read path -------------------------------------------------------------
        rd_count = Signal(range(maxo + 1))
        arq = _fifo(m, "arq", req.size, maxo)
        ar_fire = s.arvalid & s.arready
        ar_in = Signal(req)
        m.d.comb += [
            s.arready.eq(rd_count < maxo),
            ar_in.id.eq(s.arid), ar_in.addr.eq(s.araddr), ar_in.len.eq(s.arlen),
            ar_in.size.eq(s.arsize), ar_in.burst.eq(s.arburst), ar_in.user.eq(self.s_axi_aruser),
            # -2: the burst is loaded the cycle it is due and its first beat leaves the next
            ar_in.t.eq(now + (c.read_latency - 2) + row_extra(s.araddr, ar_fire)),
            arq.w_data.eq(ar_in), arq.w_en.eq(ar_fire),
        ]
        head = req(arq.r_data)
        head_ready = arq.r_rdy & ((now - head.t)[:32].as_signed() >= 0)

        cur = Signal(req)
        active = Signal()
        beat = Signal(8)
        r_valid, r_last, r_id, r_resp, r_poison, r_size = (
            Signal(), Signal(), Signal(c.id_bits), Signal(2), Signal(), Signal(3))
        advance = ~r_valid | s.rready
        rd_want = advance & active

        aw_head_valid = Signal()
        wr_want = aw_head_valid & s.wvalid
        m.d.comb += [
            rd_go.eq(rd_want & tok_ok & (~wr_want | ~last_rd)),
            wr_go.eq(s.wvalid & s.wready),
            s.wready.eq(aw_head_valid & tok_ok & ~rd_go),
        ]
        last_beat = beat == cur.len
        m.d.comb += [rd.addr.eq(word(cur.addr, beat, cur.size, cur.burst)), rd.en.eq(advance)]
        with m.If(advance):
            m.d.sync += r_valid.eq(rd_go)
        with m.If(rd_go):
            m.d.sync += [
                r_last.eq(last_beat), r_id.eq(cur.id), r_size.eq(cur.size),
                r_resp.eq(Mux(cur.user == USER_OK, RESP_OKAY,
                              Mux(cur.user == USER_DECERR, RESP_DECERR, RESP_SLVERR))),
                r_poison.eq(cur.user == USER_POISON),
                beat.eq(beat + 1),
            ]
            with m.If(last_beat):
                m.d.sync += [active.eq(0), beat.eq(0)]
        load = (~active | (rd_go & last_beat)) & head_ready
        m.d.comb += arq.r_en.eq(load)
        with m.If(load):
            m.d.sync += [cur.eq(head), active.eq(1), beat.eq(0)]
        r_fire = r_valid & s.rready
        m.d.comb += [
            s.rvalid.eq(r_valid), s.rid.eq(r_id), s.rresp.eq(r_resp), s.rlast.eq(r_last),
            s.rdata.eq(Mux(r_poison, ~rd.data, rd.data)),
        ]
        m.d.sync += rd_count.eq(rd_count + ar_fire - (r_fire & r_last))

        # --- write path ------------------------------------------------------------
        wr_count = Signal(range(maxo + 1))
        awq = _fifo(m, "awq", req.size, maxo)
        aw_fire = s.awvalid & s.awready
        aw_in = Signal(req)
        m.d.comb += [
            s.awready.eq(wr_count < maxo),
            aw_in.id.eq(s.awid), aw_in.addr.eq(s.awaddr), aw_in.len.eq(s.awlen),
            aw_in.size.eq(s.awsize), aw_in.burst.eq(s.awburst),
            aw_in.user.eq(self.s_axi_awuser),
            aw_in.t.eq(row_extra(s.awaddr, aw_fire)),
            awq.w_data.eq(aw_in), awq.w_en.eq(aw_fire),
            aw_head_valid.eq(awq.r_rdy),
        ]
        awh = req(awq.r_data)
        wbeat = Signal(8)
        blay = data.StructLayout({"id": c.id_bits, "resp": 2, "t": 32})
        bq = _fifo(m, "bq", blay.size, maxo)
        b_in = Signal(blay)
        w_last = wbeat == awh.len
        blocked = (awh.user == USER_SLVERR) | (awh.user == USER_DECERR)
        # a backdoor write owns the port for its cycle (Mux, not a comb m.If: rtl/lib/mux.py)
        m.d.comb += [
            wr.addr.eq(Mux(self.bd_we, self.bd_addr, word(awh.addr, wbeat, awh.size, awh.burst))),
            wr.data.eq(Mux(self.bd_we, self.bd_wdata, s.wdata)),
            wr.en.eq(Mux(self.bd_we, Const((1 << W) - 1, W), Mux(wr_go & ~blocked, s.wstrb, 0))),
        ]
        m.d.comb += [
            b_in.id.eq(awh.id),
            b_in.resp.eq(Mux(awh.user == USER_DECERR, RESP_DECERR,
                             Mux(awh.user == USER_SLVERR, RESP_SLVERR, RESP_OKAY))),
            b_in.t.eq(now + c.write_latency + awh.t),
            bq.w_data.eq(b_in), bq.w_en.eq(wr_go & w_last), awq.r_en.eq(wr_go & w_last),
        ]
        with m.If(wr_go):
            m.d.sync += wbeat.eq(Mux(w_last, 0, wbeat + 1))
        bh = blay(bq.r_data)
        b_valid = bq.r_rdy & ((now - bh.t)[:32].as_signed() >= 0)
        b_fire = b_valid & s.bready
        m.d.comb += [s.bvalid.eq(b_valid), s.bid.eq(bh.id), s.bresp.eq(bh.resp),
                     bq.r_en.eq(b_fire)]
        m.d.sync += wr_count.eq(wr_count + aw_fire - b_fire)

        # --- performance counters --------------------------------------------------
        m.d.sync += [
            self.perf_rd_bytes.eq(self.perf_rd_bytes + Mux(r_fire, 1 << r_size, 0)),
            self.perf_wr_bytes.eq(self.perf_wr_bytes + Mux(wr_go, 1 << awh.size, 0)),
            self.perf_busy.eq(self.perf_busy + (r_fire | wr_go)),
            self.perf_stall.eq(self.perf_stall + ((r_valid & ~s.rready) | (b_valid & ~s.bready)
                                                  | ((rd_want | wr_want) & ~tok_ok))),
        ]
        return m


class HbmStub(wiring.Component):
    """Multi-channel HBM stub: one AXI4 slave port ``s_axi_*`` on the global space.

    Address map: channel = ``(addr // interleave_bytes) % channels``; inside a channel
    the granules are packed. A burst is routed whole to the channel of its first byte,
    so a burst that crosses an interleave granule (and therefore any burst that crosses
    4 KiB), or reaches past ``total_bytes``, gets DECERR and writes nothing. WRAP (and
    the reserved burst type) or a SIZE wider than the bus get SLVERR.

    Responses: reads return in the order their ARs were accepted, writes likewise
    (strictly stronger than AXI per-ID ordering).

    Error injection: when ``i_err_kind`` is ``ERR_SLVERR``, every burst that touches
    ``[i_err_base, i_err_limit)`` answers SLVERR and writes nothing; ``ERR_POISON``
    makes such reads return SLVERR with every data bit inverted (uncorrectable ECC),
    writes proceed.

    Backdoor: ``i_bd_addr`` (byte address, word aligned), ``i_bd_wdata``, ``i_bd_we``;
    ``o_bd_rdata`` is the word at the address of the previous cycle.

    Performance counters (sums over channels): bytes read/written, busy cycles (an R
    or W beat moved), stall cycles (a beat held by the master, or throttled).
    """

    def __init__(self, config: HbmConfig):
        self.cfg = c = config
        W = c.data_bytes
        members = axi4_members("s_axi", addr_bits=c.addr_bits, data_bytes=W, id_bits=c.id_bits,
                               master=False)
        members.update({
            "i_err_kind": In(2), "i_err_base": In(32), "i_err_limit": In(32),
            "i_bd_addr": In(32), "i_bd_wdata": In(8 * W), "i_bd_we": In(1),
            "o_bd_rdata": Out(8 * W),
            "o_perf_rd_bytes": Out(32), "o_perf_wr_bytes": Out(32), "o_perf_busy": Out(32),
            "o_perf_stall": Out(32),
        })
        super().__init__(members)

    def route(self, addr):
        """(channel, local address) of a global address (Amaranth values)."""
        c = self.cfg
        g, n, la = _log2(c.interleave_bytes), _log2(c.channels), _log2(c.channel_bytes)
        ch = addr[g:g + n] if n else Const(0, 1)
        local = Cat(addr[:g], addr[g + n:g + n + la - g])
        return ch, local

    def _verdict(self, m, addr, length, size, burst):
        c = self.cfg
        lw, g = _log2(c.data_bytes), _log2(c.interleave_bytes)
        start = Signal(34)
        end = Signal(34)
        m.d.comb += [
            start.eq(addr & ~((Const(1, 34) << size) - 1)),
            end.eq(start + Mux(burst == BURST_FIXED, Const(1, 34) << size,
                               (length + 1) << size) - 1),
        ]
        decerr = (start[g:] != end[g:]) | (end >= c.total_bytes)
        badtype = (burst > BURST_INCR) | (size > lw)
        inject = (self.i_err_kind != ERR_OFF) & (start < self.i_err_limit) & \
            (end >= self.i_err_base)
        return Mux(decerr, USER_DECERR, Mux(badtype, USER_SLVERR,
                                            Mux(inject, self.i_err_kind, USER_OK)))

    def elaborate(self, platform):
        m = Module()
        c = self.cfg
        N = c.channels
        nb = max(_log2(N), 1)
        s = AxiView(self, "s_axi")
        chans = []
        for i in range(N):
            ch = HbmChannel(c)
            m.submodules[f"ch{i}"] = ch
            chans.append(ch)
        views = [AxiView(ch, "s_axi") for ch in chans]
        depth = min(N * c.max_outstanding, 64)

        # --- AR -> channel; R back in AR order ----------------------------------------
        rq = _fifo(m, "rq", nb, depth)
        ar_ch, ar_local = self.route(s.araddr)
        ar_sel = Signal(nb)
        m.d.comb += ar_sel.eq(ar_ch)
        aruser = self._verdict(m, s.araddr, s.arlen, s.arsize, s.arburst)
        # every N:1 pick below is a `select` (continuous assigns), never an Array: an
        # Array is an `always @*` that Icarus leaves X until an input changes (mux.py)
        m.d.comb += [s.arready.eq(rq.w_rdy & select(ar_sel, [v.arready for v in views])),
                     rq.w_en.eq(s.arvalid & s.arready), rq.w_data.eq(ar_sel)]
        rh = Signal(nb)
        m.d.comb += rh.eq(rq.r_data)
        for i, (ch, v) in enumerate(zip(chans, views)):
            m.d.comb += [
                v.arvalid.eq(s.arvalid & rq.w_rdy & (ar_sel == i)), v.araddr.eq(ar_local),
                v.arid.eq(s.arid), v.arlen.eq(s.arlen), v.arsize.eq(s.arsize),
                v.arburst.eq(s.arburst), ch.s_axi_aruser.eq(aruser),
                v.rready.eq(s.rready & rq.r_rdy & (rh == i)),
            ]
        pick = lambda name: select(rh, [getattr(v, name) for v in views])   # noqa: E731
        m.d.comb += [
            s.rvalid.eq(rq.r_rdy & pick("rvalid")), s.rdata.eq(pick("rdata")),
            s.rid.eq(pick("rid")), s.rresp.eq(pick("rresp")), s.rlast.eq(pick("rlast")),
            rq.r_en.eq(s.rvalid & s.rready & s.rlast),
        ]

        # --- AW -> channel; W follows AW order; B back in AW order -----------------
        wq = _fifo(m, "wq", nb, depth)
        bq = _fifo(m, "bq", nb, depth)
        aw_ch, aw_local = self.route(s.awaddr)
        aw_sel = Signal(nb)
        m.d.comb += aw_sel.eq(aw_ch)
        awuser = self._verdict(m, s.awaddr, s.awlen, s.awsize, s.awburst)
        aw_fire = s.awvalid & s.awready
        awready = select(aw_sel, [v.awready for v in views])
        m.d.comb += [s.awready.eq(wq.w_rdy & bq.w_rdy & awready),
                     wq.w_en.eq(aw_fire), wq.w_data.eq(aw_sel),
                     bq.w_en.eq(aw_fire), bq.w_data.eq(aw_sel)]
        wh, bh = Signal(nb), Signal(nb)
        m.d.comb += [wh.eq(wq.r_data), bh.eq(bq.r_data)]
        for i, (ch, v) in enumerate(zip(chans, views)):
            m.d.comb += [
                v.awvalid.eq(s.awvalid & wq.w_rdy & bq.w_rdy & (aw_sel == i)),
                v.awaddr.eq(aw_local), v.awid.eq(s.awid), v.awlen.eq(s.awlen),
                v.awsize.eq(s.awsize), v.awburst.eq(s.awburst), ch.s_axi_awuser.eq(awuser),
                v.wvalid.eq(s.wvalid & wq.r_rdy & (wh == i)), v.wdata.eq(s.wdata),
                v.wstrb.eq(s.wstrb), v.wlast.eq(s.wlast),
                v.bready.eq(s.bready & bq.r_rdy & (bh == i)),
            ]
        m.d.comb += [
            s.wready.eq(wq.r_rdy & select(wh, [v.wready for v in views])),
            wq.r_en.eq(s.wvalid & s.wready & s.wlast),
            s.bvalid.eq(bq.r_rdy & select(bh, [v.bvalid for v in views])),
            s.bid.eq(select(bh, [v.bid for v in views])),
            s.bresp.eq(select(bh, [v.bresp for v in views])),
            bq.r_en.eq(s.bvalid & s.bready),
        ]

        # --- backdoor and counters ---------------------------------------------------
        lw = _log2(c.data_bytes)
        bd_ch, bd_local = self.route(self.i_bd_addr)
        bd_sel = Signal(nb)
        bd_sel_q = Signal(nb)
        m.d.comb += bd_sel.eq(bd_ch)
        m.d.sync += bd_sel_q.eq(bd_sel)
        for i, ch in enumerate(chans):
            m.d.comb += [ch.bd_addr.eq(bd_local[lw:]), ch.bd_wdata.eq(self.i_bd_wdata),
                         ch.bd_we.eq(self.i_bd_we & (bd_sel == i))]
        m.d.comb += self.o_bd_rdata.eq(select(bd_sel_q, [ch.bd_rdata for ch in chans]))
        for name in ("rd_bytes", "wr_bytes", "busy", "stall"):
            total = sum((getattr(ch, f"perf_{name}") for ch in chans), Const(0, 32))
            m.d.comb += getattr(self, f"o_perf_{name}").eq(total[:32])
        return m
