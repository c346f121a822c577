# amaranth: UnusedElaboratable=no
"""HBM controller stub: N pseudo-channels behind one AXI4 subordinate port.

:class:`HbmStub` is what makes bandwidth and latency real in every performance figure:
data comes back ``read_latency`` cycles after its address, at most ``bytes_per_cycle``
per channel, with at most ``max_outstanding`` bursts queued per channel. The analytic
model of its timing, the error kinds and the router's verdict codes are
:mod:`models.hbm`; docs/memory.md has the full contract.

(The pragma above: the stub's channels are one shared Verilog module, :mod:`rtl.lib.shared`;
only the first channel is elaborated.)
"""
from __future__ import annotations

from types import SimpleNamespace

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from models.axi import BURST_BITS, LEN_BITS, RESP_BITS, SIZE_BITS, Burst, Resp
from models.config import HbmConfig
from models.hbm import ERR_KIND_BITS, USER_BITS, ErrKind, User
from rtl.lib.axi import AxiSignature
from rtl.lib.mux import select
from rtl.lib.shared import shared_instance
from rtl.lib.stream import Queue

__all__ = ["HbmChannel", "HbmStub"]


def _log2(x: int) -> int:
    return x.bit_length() - 1


def _perf_members() -> dict:
    return {"o_perf_rd_bytes": Out(32), "o_perf_wr_bytes": Out(32), "o_perf_busy": Out(32),
            "o_perf_stall": Out(32)}


class HbmChannel(wiring.Component):
    """One pseudo-channel: AXI4 subordinate on a local address space of ``channel_bytes``.

    Members
    -------
    s_axi : In(AxiSignature(addr_width=log2(channel_bytes), data_width=8 * data_bytes,
        id_width=id_bits, user_width=models.hbm.USER_BITS))
        ``aruser`` / ``awuser`` carry the router's verdict on the burst
        (:class:`models.hbm.User`).
    i_bd_addr (word index), i_bd_wdata, i_bd_we : In; o_bd_rdata : Out
        Word-wide backdoor for testbenches (1-cycle read latency); a backdoor write
        takes the write port for that cycle (use when AXI is idle).
    o_perf_rd_bytes, o_perf_wr_bytes, o_perf_busy, o_perf_stall : Out(32)
        See :class:`HbmStub`.

    Bursts are served in the order their addresses were accepted (reads and writes
    each in order), which satisfies AXI per-ID ordering for every ID.

    Timing
    ------
    * read: the first beat leaves no earlier than ``read_latency`` cycles after AR was
      accepted (+ ``row_miss_cycles`` on a row miss), then one beat per cycle unless
      throttled by the bandwidth limit or held by ``rready``;
    * write: B leaves ``write_latency`` (+ row miss) cycles after the last W beat;
    * bandwidth: a token bucket refilled by ``bytes_per_cycle`` per cycle, capped at one
      beat; an R or W beat costs ``data_bytes`` tokens (reads and writes share the
      channel, alternating priority when both wait).
    """

    def __init__(self, config: HbmConfig):
        self.cfg = c = config
        W = c.data_bytes
        self.la = _log2(c.channel_bytes)
        self.words = c.store // W
        super().__init__({
            "s_axi": In(AxiSignature(addr_width=self.la, data_width=8 * W, id_width=c.id_bits,
                                     user_width=USER_BITS)),
            "i_bd_addr": In(range(self.words)), "i_bd_wdata": In(8 * W), "i_bd_we": In(1),
            "o_bd_rdata": Out(8 * W),
            **_perf_members(),
        })

    # The sections share their signals through the namespace ``x``; the read path
    # runs before the write path (a write's row-buffer update wins in a tie).
    def elaborate(self, platform):
        m = Module()
        c, x = self.cfg, SimpleNamespace()
        m.submodules.mem = mem = Memory(shape=8 * c.data_bytes, depth=self.words, init=[])
        x.rd, bd, x.wr = mem.read_port(), mem.read_port(), mem.write_port(granularity=8)
        m.d.comb += [bd.addr.eq(self.i_bd_addr), self.o_bd_rdata.eq(bd.data)]
        x.now = Signal(32, name="now")
        m.d.sync += x.now.eq(x.now + 1)
        x.req = data.StructLayout({"id": c.id_bits, "addr": self.la, "len": LEN_BITS,
                                   "size": SIZE_BITS, "burst": BURST_BITS, "user": USER_BITS,
                                   "t": 32})
        self._row_timing(m, x)
        self._tokens(m, x)
        self._read_path(m, x)
        self._write_path(m, x)
        self._counters(m, x)
        return m

    def _word(self, addr, beat, size, burst):
        """Word index of beat ``beat`` of a burst."""
        c = self.cfg
        off = Mux(burst == Burst.FIXED, 0, beat << size)
        return (addr + off)[_log2(c.data_bytes):_log2(c.store)]

    # --- optional row-buffer timing ----------------------------------------------------
    # lookups through `select` (continuous assigns), not Array: see rtl/lib/mux.py
    def _row_timing(self, m, x):
        c, la = self.cfg, self.la
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
        x.row_extra = row_extra

    # --- bandwidth tokens (shared by R and W beats) ------------------------------------
    def _tokens(self, m, x):
        c, W = self.cfg, self.cfg.data_bytes
        tok = Signal(range(2 * W + 1), init=W)
        x.tok_ok = tok >= W
        x.rd_go, x.wr_go = Signal(name="rd_go"), Signal(name="wr_go")
        x.last_rd = Signal(name="last_rd")
        spent = Mux(x.rd_go | x.wr_go, W, 0)
        refill = tok + c.bytes_per_cycle - spent
        m.d.sync += tok.eq(Mux(refill > W, W, refill))
        with m.If(x.rd_go | x.wr_go):
            m.d.sync += x.last_rd.eq(x.rd_go)

    # --- read path: AR queue (due time) -> current burst -> R register -----------------
    def _read_path(self, m, x):
        c, s, req = self.cfg, self.s_axi, x.req
        maxo = c.max_outstanding
        rd_count = Signal(range(maxo + 1))
        m.submodules.arq = arq = Queue(req, maxo)
        ar_fire = s.arvalid & s.arready
        m.d.comb += [
            s.arready.eq(rd_count < maxo),
            arq.i.payload.id.eq(s.arid), arq.i.payload.addr.eq(s.araddr),
            arq.i.payload.len.eq(s.arlen), arq.i.payload.size.eq(s.arsize),
            arq.i.payload.burst.eq(s.arburst), arq.i.payload.user.eq(s.aruser),
            # -2: the burst is loaded the cycle it is due and its first beat leaves the next
            arq.i.payload.t.eq(x.now + (c.read_latency - 2) + x.row_extra(s.araddr, ar_fire)),
            arq.i.valid.eq(ar_fire),
        ]
        head = arq.o.payload
        head_ready = arq.o.valid & ((x.now - head.t)[:32].as_signed() >= 0)
        cur, active, beat = Signal(req), Signal(), Signal(LEN_BITS)
        r_valid, r_last, r_id, r_resp, r_poison, r_size = (
            Signal(), Signal(), Signal(c.id_bits), Signal(RESP_BITS), Signal(), Signal(SIZE_BITS))
        advance = ~r_valid | s.rready
        x.rd_want = advance & active
        x.aw_head_valid = Signal(name="aw_head_valid")
        x.wr_want = x.aw_head_valid & s.wvalid
        m.d.comb += [
            x.rd_go.eq(x.rd_want & x.tok_ok & (~x.wr_want | ~x.last_rd)),
            x.wr_go.eq(s.wvalid & s.wready),
            s.wready.eq(x.aw_head_valid & x.tok_ok & ~x.rd_go),
        ]
        last_beat = beat == cur.len
        m.d.comb += [x.rd.addr.eq(self._word(cur.addr, beat, cur.size, cur.burst)),
                     x.rd.en.eq(advance)]
        with m.If(advance):
            m.d.sync += r_valid.eq(x.rd_go)
        with m.If(x.rd_go):
            m.d.sync += [
                r_last.eq(last_beat), r_id.eq(cur.id), r_size.eq(cur.size),
                r_resp.eq(Mux(cur.user == User.OK, Resp.OKAY,
                              Mux(cur.user == User.DECERR, Resp.DECERR, Resp.SLVERR))),
                r_poison.eq(cur.user == User.POISON), beat.eq(beat + 1),
            ]
            with m.If(last_beat):
                m.d.sync += [active.eq(0), beat.eq(0)]
        load = (~active | (x.rd_go & last_beat)) & head_ready
        m.d.comb += arq.o.ready.eq(load)
        with m.If(load):
            m.d.sync += [cur.eq(head), active.eq(1), beat.eq(0)]
        x.r_fire, x.r_size, x.r_stall = r_valid & s.rready, r_size, r_valid & ~s.rready
        m.d.comb += [
            s.rvalid.eq(r_valid), s.rid.eq(r_id), s.rresp.eq(r_resp), s.rlast.eq(r_last),
            s.rdata.eq(Mux(r_poison, ~x.rd.data, x.rd.data)),
        ]
        m.d.sync += rd_count.eq(rd_count + ar_fire - (x.r_fire & r_last))

    # --- write path: AW queue -> W beats into memory -> B queue (due time) -------------
    def _write_path(self, m, x):
        c, s, W = self.cfg, self.s_axi, self.cfg.data_bytes
        maxo = c.max_outstanding
        wr_count = Signal(range(maxo + 1))
        m.submodules.awq = awq = Queue(x.req, maxo)
        aw_fire = s.awvalid & s.awready
        m.d.comb += [
            s.awready.eq(wr_count < maxo),
            awq.i.payload.id.eq(s.awid), awq.i.payload.addr.eq(s.awaddr),
            awq.i.payload.len.eq(s.awlen), awq.i.payload.size.eq(s.awsize),
            awq.i.payload.burst.eq(s.awburst), awq.i.payload.user.eq(s.awuser),
            awq.i.payload.t.eq(x.row_extra(s.awaddr, aw_fire)),
            awq.i.valid.eq(aw_fire), x.aw_head_valid.eq(awq.o.valid),
        ]
        awh = awq.o.payload
        wbeat = Signal(LEN_BITS)
        m.submodules.bq = bq = Queue(data.StructLayout({"id": c.id_bits, "resp": RESP_BITS,
                                                        "t": 32}), maxo)
        w_last = wbeat == awh.len
        blocked = (awh.user == User.SLVERR) | (awh.user == User.DECERR)
        # a backdoor write owns the port for its cycle (Mux, not a comb m.If: rtl/lib/mux.py)
        m.d.comb += [
            x.wr.addr.eq(Mux(self.i_bd_we, self.i_bd_addr,
                             self._word(awh.addr, wbeat, awh.size, awh.burst))),
            x.wr.data.eq(Mux(self.i_bd_we, self.i_bd_wdata, s.wdata)),
            x.wr.en.eq(Mux(self.i_bd_we, Const((1 << W) - 1, W),
                           Mux(x.wr_go & ~blocked, s.wstrb, 0))),
            bq.i.payload.id.eq(awh.id),
            bq.i.payload.resp.eq(Mux(awh.user == User.DECERR, Resp.DECERR,
                                     Mux(awh.user == User.SLVERR, Resp.SLVERR, Resp.OKAY))),
            bq.i.payload.t.eq(x.now + c.write_latency + awh.t),
            bq.i.valid.eq(x.wr_go & w_last), awq.o.ready.eq(x.wr_go & w_last),
        ]
        with m.If(x.wr_go):
            m.d.sync += wbeat.eq(Mux(w_last, 0, wbeat + 1))
        bh = bq.o.payload
        b_valid = bq.o.valid & ((x.now - bh.t)[:32].as_signed() >= 0)
        b_fire = b_valid & s.bready
        m.d.comb += [s.bvalid.eq(b_valid), s.bid.eq(bh.id), s.bresp.eq(bh.resp),
                     bq.o.ready.eq(b_fire)]
        m.d.sync += wr_count.eq(wr_count + aw_fire - b_fire)
        x.w_size, x.b_stall = awh.size, b_valid & ~s.bready

    # --- performance counters --------------------------------------------------------
    def _counters(self, m, x):
        m.d.sync += [
            self.o_perf_rd_bytes.eq(self.o_perf_rd_bytes + Mux(x.r_fire, 1 << x.r_size, 0)),
            self.o_perf_wr_bytes.eq(self.o_perf_wr_bytes + Mux(x.wr_go, 1 << x.w_size, 0)),
            self.o_perf_busy.eq(self.o_perf_busy + (x.r_fire | x.wr_go)),
            self.o_perf_stall.eq(self.o_perf_stall + (x.r_stall | x.b_stall |
                                                      ((x.rd_want | x.wr_want) & ~x.tok_ok))),
        ]


def route(config: HbmConfig, addr):
    """(channel, local address) of a global byte address (Amaranth values), as
    :func:`models.hbm.route`: channel = ``(addr // interleave_bytes) % channels``."""
    c = config
    g, n, la = _log2(c.interleave_bytes), _log2(c.channels), _log2(c.channel_bytes)
    ch = addr[g:g + n] if n else Const(0, 1)
    local = Cat(addr[:g], addr[g + n:g + n + la - g])
    return ch, local


def channel_backdoor(m, config: HbmConfig, owner, chans) -> None:
    """Serve ``owner``'s global backdoor and counters from the channels' own.

    ``owner.i_bd_addr`` (global byte address, word aligned), ``i_bd_wdata``, ``i_bd_we``
    reach the channel that owns the address (:func:`route`); ``owner.o_bd_rdata`` is the
    word at the previous cycle's address (1-cycle latency). ``owner.o_perf_*`` are the
    sums of the channels' counters (32 bits, wrapping). Used by every block that holds
    HBM channels (:class:`HbmStub`, the NoC systems), so the map exists once.
    """
    nb = max(_log2(config.channels), 1)
    bd_ch, bd_local = route(config, owner.i_bd_addr)
    bd_sel, bd_sel_q = Signal(nb), Signal(nb)
    m.d.comb += bd_sel.eq(bd_ch)
    m.d.sync += bd_sel_q.eq(bd_sel)
    for i, ch in enumerate(chans):
        m.d.comb += [ch.i_bd_addr.eq(bd_local[_log2(config.data_bytes):]),
                     ch.i_bd_wdata.eq(owner.i_bd_wdata),
                     ch.i_bd_we.eq(owner.i_bd_we & (bd_sel == i))]
    m.d.comb += owner.o_bd_rdata.eq(select(bd_sel_q, [ch.o_bd_rdata for ch in chans]))
    for name in ("o_perf_rd_bytes", "o_perf_wr_bytes", "o_perf_busy", "o_perf_stall"):
        total = sum((getattr(ch, name) for ch in chans), Const(0, 32))[:32]
        m.d.comb += getattr(owner, name).eq(total)


class HbmStub(wiring.Component):
    """Multi-channel HBM stub: one AXI4 subordinate port on the global space.

    Members
    -------
    s_axi : In(AxiSignature(addr_width=32, data_width=8 * data_bytes, id_width=id_bits))
    i_err_kind : In(models.hbm.ERR_KIND_BITS); i_err_base, i_err_limit : In(32)
        Error injection (:class:`models.hbm.ErrKind`) on ``[i_err_base, i_err_limit)``.
    i_bd_addr, i_bd_wdata, i_bd_we : In; o_bd_rdata : Out
        Backdoor: byte address (word aligned), data, write enable; ``o_bd_rdata`` is
        the word at the address of the previous cycle.
    o_perf_rd_bytes, o_perf_wr_bytes, o_perf_busy, o_perf_stall : Out(32)
        Sums over channels: bytes read/written, busy cycles (an R or W beat moved),
        stall cycles (a beat held by the manager, or throttled).

    Address map: channel = ``(addr // interleave_bytes) % channels``; inside a channel
    the granules are packed (:func:`models.hbm.route`). A burst is routed whole to the
    channel of its first byte, so a burst that crosses an interleave granule (and
    therefore any burst that crosses 4 KiB), or reaches past ``total_bytes``, gets
    DECERR and writes nothing. WRAP (and the reserved burst type) or a SIZE wider than
    the bus get SLVERR (:func:`models.hbm.burst_verdict`, same rules and priority).

    Responses: reads return in the order their ARs were accepted, writes likewise
    (strictly stronger than AXI per-ID ordering). Error injection: ``ErrKind.SLVERR``
    makes every burst that touches the range answer SLVERR and write nothing;
    ``ErrKind.POISON`` makes such reads return SLVERR with every data bit inverted
    (uncorrectable ECC), writes proceed.
    """

    def __init__(self, config: HbmConfig):
        self.cfg = c = config
        W = c.data_bytes
        super().__init__({
            "s_axi": In(AxiSignature(addr_width=c.addr_bits, data_width=8 * W,
                                     id_width=c.id_bits)),
            "i_err_kind": In(ERR_KIND_BITS), "i_err_base": In(32), "i_err_limit": In(32),
            "i_bd_addr": In(32), "i_bd_wdata": In(8 * W), "i_bd_we": In(1),
            "o_bd_rdata": Out(8 * W),
            **_perf_members(),
        })

    def route(self, addr):
        """(channel, local address) of a global address (Amaranth values)."""
        return route(self.cfg, addr)

    def _verdict(self, m, addr, length, size, burst):
        """:class:`models.hbm.User` code of a burst (models.hbm.burst_verdict's rules)."""
        c = self.cfg
        lw, g = _log2(c.data_bytes), _log2(c.interleave_bytes)
        start = Signal(34)
        end = Signal(34)
        m.d.comb += [
            start.eq(addr & ~((Const(1, 34) << size) - 1)),
            end.eq(start + Mux(burst == Burst.FIXED, Const(1, 34) << size,
                               (length + 1) << size) - 1),
        ]
        decerr = (start[g:] != end[g:]) | (end >= c.total_bytes)
        badtype = (burst > Burst.INCR) | (size > lw)
        inject = (self.i_err_kind != ErrKind.OFF) & (start < self.i_err_limit) & \
            (end >= self.i_err_base)
        # an injected kind passes through: models.hbm.User shares its codes
        return Mux(decerr, User.DECERR, Mux(badtype, User.SLVERR,
                                            Mux(inject, self.i_err_kind, User.OK)))

    def elaborate(self, platform):
        m = Module()
        chans = []
        for i in range(self.cfg.channels):   # one Verilog module for all (rtl.lib.shared)
            chans.append(shared_instance(m, HbmChannel(self.cfg), f"ch{i}", key=self.cfg))
        self._read_router(m, chans)
        self._write_router(m, chans)
        self._backdoor_and_counters(m, chans)
        return m

    # every N:1 pick below is a `select` (continuous assigns), never an Array: an Array
    # is an `always @*` that Icarus leaves X until an input changes (rtl/lib/mux.py)
    def _depth(self):
        return min(self.cfg.channels * self.cfg.max_outstanding, 64)

    # --- AR -> channel; R back in AR order ---------------------------------------------
    def _read_router(self, m, chans):
        s, nb = self.s_axi, max(_log2(self.cfg.channels), 1)
        views = [ch.s_axi for ch in chans]
        m.submodules.rq = rq = Queue(nb, self._depth())   # channel of each accepted AR
        ar_ch, ar_local = self.route(s.araddr)
        ar_sel = Signal(nb)
        m.d.comb += ar_sel.eq(ar_ch)
        aruser = self._verdict(m, s.araddr, s.arlen, s.arsize, s.arburst)
        m.d.comb += [s.arready.eq(rq.i.ready & select(ar_sel, [v.arready for v in views])),
                     rq.i.valid.eq(s.arvalid & s.arready), rq.i.payload.eq(ar_sel)]
        rh = rq.o.payload
        for i, v in enumerate(views):
            m.d.comb += [
                v.arvalid.eq(s.arvalid & rq.i.ready & (ar_sel == i)), v.araddr.eq(ar_local),
                v.arid.eq(s.arid), v.arlen.eq(s.arlen), v.arsize.eq(s.arsize),
                v.arburst.eq(s.arburst), v.aruser.eq(aruser),
                v.rready.eq(s.rready & rq.o.valid & (rh == i)),
            ]
        m.d.comb += [
            s.rvalid.eq(rq.o.valid & select(rh, [v.rvalid for v in views])),
            s.rdata.eq(select(rh, [v.rdata for v in views])),
            s.rid.eq(select(rh, [v.rid for v in views])),
            s.rresp.eq(select(rh, [v.rresp for v in views])),
            s.rlast.eq(select(rh, [v.rlast for v in views])),
            rq.o.ready.eq(s.rvalid & s.rready & s.rlast),
        ]

    # --- AW -> channel; W follows AW order; B back in AW order -------------------------
    def _write_router(self, m, chans):
        s, nb = self.s_axi, max(_log2(self.cfg.channels), 1)
        views = [ch.s_axi for ch in chans]
        m.submodules.wq = wq = Queue(nb, self._depth())   # channel of each AW, for W
        m.submodules.bq = bq = Queue(nb, self._depth())   # and for B
        aw_ch, aw_local = self.route(s.awaddr)
        aw_sel = Signal(nb)
        m.d.comb += aw_sel.eq(aw_ch)
        awuser = self._verdict(m, s.awaddr, s.awlen, s.awsize, s.awburst)
        aw_fire = s.awvalid & s.awready
        awready = select(aw_sel, [v.awready for v in views])
        m.d.comb += [s.awready.eq(wq.i.ready & bq.i.ready & awready),
                     wq.i.valid.eq(aw_fire), wq.i.payload.eq(aw_sel),
                     bq.i.valid.eq(aw_fire), bq.i.payload.eq(aw_sel)]
        wh, bh = wq.o.payload, bq.o.payload
        for i, v in enumerate(views):
            m.d.comb += [
                v.awvalid.eq(s.awvalid & wq.i.ready & bq.i.ready & (aw_sel == i)),
                v.awaddr.eq(aw_local), v.awid.eq(s.awid), v.awlen.eq(s.awlen),
                v.awsize.eq(s.awsize), v.awburst.eq(s.awburst), v.awuser.eq(awuser),
                v.wvalid.eq(s.wvalid & wq.o.valid & (wh == i)), v.wdata.eq(s.wdata),
                v.wstrb.eq(s.wstrb), v.wlast.eq(s.wlast),
                v.bready.eq(s.bready & bq.o.valid & (bh == i)),
            ]
        m.d.comb += [
            s.wready.eq(wq.o.valid & select(wh, [v.wready for v in views])),
            wq.o.ready.eq(s.wvalid & s.wready & s.wlast),
            s.bvalid.eq(bq.o.valid & select(bh, [v.bvalid for v in views])),
            s.bid.eq(select(bh, [v.bid for v in views])),
            s.bresp.eq(select(bh, [v.bresp for v in views])),
            bq.o.ready.eq(s.bvalid & s.bready),
        ]

    # --- backdoor and counters ---------------------------------------------------------
    def _backdoor_and_counters(self, m, chans):
        channel_backdoor(m, self.cfg, self, chans)
