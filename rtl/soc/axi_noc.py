# amaranth: UnusedElaboratable=no
"""AXI4 over the mesh: the initiator bridge (:class:`AxiToNoc`) and the target bridge
(:class:`NocToAxi`) between AXI4 ports and :class:`rtl.noc.fabric.NocMemFabric`.

One memory protocol across the chip: an AXI4 burst is one memory message
(:mod:`models.noc`: ``op``, ``addr`` = global byte address, ``len`` = AXI len, ``id`` =
the initiator's reorder slot), write strobes ride in the flits' strobe lanes
(:func:`rtl.noc.flit.payload_bits`), a response carries its AXI ``Resp`` in the header's
status bits. Every width is derived from one :class:`models.config.JalapenoConfig`
(AXI data = ``hbm.data_bytes``, one beat per flit). Golden model of the mapping and of
the locally answered errors: :mod:`models.axi_noc`; docs/soc_memory.md.
"""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from models import axi_noc as model
from models.axi import LEN_BITS, Burst, Resp
from models.config import JalapenoConfig
from models.hbm import ERR_KIND_BITS, USER_BITS, ErrKind, User
from models.noc import MemOp, STATUS_BITS
from rtl.lib.axi import AxiSignature
from rtl.lib.mux import select
from rtl.lib.shared import param_summary, shared_instance
from rtl.lib.stream import Queue
from rtl.mem.hbm import HbmChannel
from rtl.noc.ni import beat_layout, ni_header_layout

__all__ = ["AxiToNoc", "NocToAxi", "attach_initiator", "attach_hbm_channels"]


def _log2(x: int) -> int:
    return x.bit_length() - 1


def _noc_members(cfg: JalapenoConfig, initiator: bool) -> dict:
    """Stream members toward :class:`NocMemFabric`: initiator side (requests out,
    responses in) or target side (requests in, responses out)."""
    hs = stream.Signature(ni_header_layout(cfg.noc))
    bs = stream.Signature(beat_layout(cfg.noc))
    a, b = (Out, In) if initiator else (In, Out)
    pa, pb = ("o", "i") if initiator else ("i", "o")
    return {f"{pa}_req_hdr": a(hs), f"{pa}_req_data": a(bs),
            f"{pb}_resp_hdr": b(hs), f"{pb}_resp_data": b(bs)}


class AxiToNoc(wiring.Component):
    """Initiator bridge: AXI4 subordinate -> NoC requests; NoC responses -> R / B.

    Parameters
    ----------
    config : JalapenoConfig
        ``hbm`` (data width, ID width, interleave, channels), ``soc.hbm_nodes`` (where
        each channel is), ``noc`` (header and beat layouts), ``dma`` (burst length and
        bursts in flight: :func:`models.axi_noc.max_beats`, :func:`models.axi_noc.slots`).

    Members
    -------
    s_axi : In(AxiSignature(addr_width=32, data_width=8 * hbm.data_bytes,
        id_width=hbm.id_bits))
    o_req_hdr, o_req_data : Out(stream)
        To ``NocMemFabric.i_req_hdr[n]`` / ``i_req_data[n]`` of the bridge's node.
    i_resp_hdr, i_resp_data : In(stream)
        From ``NocMemFabric.o_resp_hdr[n]`` / ``o_resp_data[n]``; always ready (a slot
        is reserved for every request sent, the fabric's end-point rule).

    Behaviour: each AR / AW is decided by :func:`models.axi_noc.bridge_route`: DECERR or
    SLVERR bursts are answered locally (a read with ``len + 1`` error beats, a write's W
    beats are taken and dropped, then B), the others are sent to their channel's node
    with ``id`` = a reorder slot. Read data is buffered per slot (``slots x max_beats``
    beats) and R / B leave in the order of the AR / AW handshakes, whatever the order the
    targets answer in: one ordering per bridge for all IDs (stronger than AXI's per-ID
    rule). A read burst leaves R once all its beats are in (store and forward). AR and
    AW take turns for the request header; a write's W beats follow its header.

    Latency: AR -> READ header combinational; last response beat -> first R beat 1 cycle;
    B 1 cycle after WRITE_RESP. Throughput: one beat per cycle each way.
    """

    def __init__(self, config: JalapenoConfig):
        self.cfg = config
        h = config.hbm
        self.W = h.data_bytes
        self.S = model.slots(config)
        self.B = model.max_beats(config)
        super().__init__({
            "s_axi": In(AxiSignature(addr_width=32, data_width=8 * self.W, id_width=h.id_bits)),
            **_noc_members(config, True),
        })

    def _decide(self, m, name, addr, length, size, burst):
        """(local error?, its Resp, node x, node y) of a burst: models.axi_noc rules."""
        cfg, h = self.cfg, self.cfg.hbm
        lw, g, nc = _log2(self.W), _log2(h.interleave_bytes), _log2(h.channels)
        start, end = Signal(34, name=f"{name}_start"), Signal(34, name=f"{name}_end")
        m.d.comb += [
            start.eq(addr & ~((Const(1, 34) << size) - 1)),
            end.eq(start + Mux(burst == Burst.FIXED, Const(1, 34) << size,
                               (length + 1) << size) - 1),
        ]
        ch = addr[g:g + nc] if nc else Const(0, 1)
        nodes = [model.channel_node(cfg, c) for c in range(h.channels)]
        missing = select(ch, [int(n is None) for n in nodes])
        cx = select(ch, [0 if n is None else n % cfg.noc.cols for n in nodes])
        cy = select(ch, [0 if n is None else n // cfg.noc.cols for n in nodes])
        decerr = (start[g:] != end[g:]) | (end >= h.total_bytes) | missing
        slverr = (size != lw) | (burst != Burst.INCR) | (length >= self.B)
        err = Signal(name=f"{name}_err")
        resp = Signal(2, name=f"{name}_resp")
        m.d.comb += [err.eq(decerr | slverr), resp.eq(Mux(decerr, Resp.DECERR, Resp.SLVERR))]
        return err, resp, cx, cy

    def elaborate(self, platform):
        m = Module()
        cfg, s, S, B = self.cfg, self.s_axi, self.S, self.B
        ls = max((S - 1).bit_length(), 1)
        lb = _log2(B)
        ab = cfg.noc.addr_bits
        hq, dq = self.o_req_hdr, self.o_req_data
        rh, rd = self.i_resp_hdr, self.i_resp_data
        m.d.comb += [rh.ready.eq(1), rd.ready.eq(1)]

        # --- slot bookkeeping: reads (r_*) and writes (w_*), allocated in handshake order
        def slot_state(p):
            return SimpleSlots(m, p, S, cfg.hbm.id_bits)
        rs, ws = slot_state("r"), slot_state("w")

        # --- request side: AR / AW decisions, header, W beats ---------------------------
        ar_err, ar_resp, ar_x, ar_y = self._decide(m, "ar", s.araddr, s.arlen, s.arsize,
                                                   s.arburst)
        aw_err, aw_resp, aw_x, aw_y = self._decide(m, "aw", s.awaddr, s.awlen, s.awsize,
                                                   s.awburst)
        wbusy, wdrop = Signal(), Signal()
        wslot = Signal(ls)
        pri_aw = Signal()            # AR and AW take turns when both wait
        ar_can = s.arvalid & ~rs.full & ~wbusy
        aw_can = s.awvalid & ~ws.full & ~wbusy
        ar_go = ar_can & (~aw_can | ~pri_aw)
        aw_go = aw_can & (~ar_can | pri_aw)
        hp = hq.payload
        with m.If(ar_go):
            m.d.comb += [hq.valid.eq(~ar_err), s.arready.eq(ar_err | hq.ready),
                         hp.op.eq(MemOp.READ), hp.addr.eq(s.araddr[:ab]), hp.len.eq(s.arlen),
                         hp.id.eq(rs.tail), hp.node_x.eq(ar_x), hp.node_y.eq(ar_y)]
        with m.Elif(aw_go):
            m.d.comb += [hq.valid.eq(~aw_err), s.awready.eq(aw_err | hq.ready),
                         hp.op.eq(MemOp.WRITE), hp.addr.eq(s.awaddr[:ab]), hp.len.eq(s.awlen),
                         hp.id.eq(ws.tail), hp.node_x.eq(aw_x), hp.node_y.eq(aw_y)]
        ar_fire = s.arvalid & s.arready
        aw_fire = s.awvalid & s.awready
        with m.If(ar_fire | aw_fire):
            m.d.sync += pri_aw.eq(ar_fire)
        m.d.comb += [rs.alloc.eq(ar_fire), rs.alloc_id.eq(s.arid), rs.alloc_len.eq(s.arlen),
                     rs.alloc_err.eq(ar_err), rs.alloc_resp.eq(ar_resp),
                     ws.alloc.eq(aw_fire), ws.alloc_id.eq(s.awid), ws.alloc_len.eq(0),
                     ws.alloc_err.eq(0), ws.alloc_resp.eq(aw_resp)]
        with m.If(aw_fire):
            m.d.sync += [wbusy.eq(1), wdrop.eq(aw_err), wslot.eq(ws.tail)]
        # W beats: to the fabric after their header, or dropped for a local error
        w_fire = s.wvalid & s.wready
        m.d.comb += [dq.valid.eq(wbusy & ~wdrop & s.wvalid),
                     s.wready.eq(wbusy & (wdrop | dq.ready)),
                     dq.payload.data.eq(s.wdata), dq.payload.strb.eq(s.wstrb),
                     dq.payload.last.eq(s.wlast)]
        w_drop_done = Signal()
        m.d.comb += w_drop_done.eq(w_fire & s.wlast & wdrop)
        with m.If(w_fire & s.wlast):
            m.d.sync += wbusy.eq(0)

        # --- response side: READ_RESP + beats into the slot buffer, WRITE_RESP ----------
        m.submodules.rbuf = rbuf = Memory(shape=8 * self.W, depth=S * B, init=[])
        wp = rbuf.write_port()
        rp = rbuf.read_port(domain="comb")
        in_rd = Signal()
        cur, beat = Signal(ls), Signal(lb + 1)
        rh_fire, rd_fire = rh.valid & rh.ready, rd.valid & rd.ready
        status = rh.payload.addr[:STATUS_BITS]
        rid = rh.payload.id[:ls]
        is_rresp = rh.payload.op == MemOp.READ_RESP
        with m.If(rh_fire & is_rresp):
            m.d.sync += [in_rd.eq(1), cur.eq(rid), beat.eq(0)]
        m.d.comb += [wp.addr.eq(Cat(beat[:lb], cur) if lb else cur), wp.data.eq(rd.payload.data),
                     wp.en.eq(rd_fire)]
        with m.If(rd_fire):
            m.d.sync += beat.eq(beat + 1)
            with m.If(rd.payload.last):
                m.d.sync += in_rd.eq(0)
        m.d.comb += [rs.resp_set.eq(rh_fire & is_rresp), rs.resp_slot.eq(rid),
                     rs.resp_val.eq(status),
                     rs.done_set.eq(rd_fire & rd.payload.last), rs.done_slot.eq(cur),
                     ws.resp_set.eq(rh_fire & ~is_rresp), ws.resp_slot.eq(rid),
                     ws.resp_val.eq(status),
                     ws.done_set.eq(rh_fire & ~is_rresp), ws.done_slot.eq(rid),
                     ws.done2_set.eq(w_drop_done), ws.done2_slot.eq(wslot)]

        # --- R and B in handshake order ------------------------------------------------
        rbeat = Signal(LEN_BITS)
        rlast = rbeat == rs.head_len
        m.d.comb += [rp.addr.eq(Cat(rbeat[:lb], rs.head) if lb else rs.head),
                     s.rvalid.eq(rs.head_done), s.rdata.eq(rp.data), s.rresp.eq(rs.head_resp),
                     s.rid.eq(rs.head_id), s.rlast.eq(rlast)]
        r_fire = s.rvalid & s.rready
        with m.If(r_fire):
            m.d.sync += rbeat.eq(Mux(rlast, 0, rbeat + 1))
        m.d.comb += rs.free.eq(r_fire & rlast)
        m.d.comb += [s.bvalid.eq(ws.head_done), s.bresp.eq(ws.head_resp), s.bid.eq(ws.head_id),
                     ws.free.eq(s.bvalid & s.bready)]
        return m


class SimpleSlots:
    """Reorder slots of one direction: a ring allocated in handshake order; each slot
    holds the AXI id, len, Resp and a done bit; the head slot leaves when done.

    Drive ``alloc`` (with ``alloc_id/len/err/resp``: a local error is done at once),
    ``resp_set``/``resp_slot``/``resp_val``, ``done_set``/``done_slot`` (and a second
    port ``done2_*``: a dropped write finishing while a WRITE_RESP arrives) and ``free``;
    read ``tail`` (the slot the next allocation gets), ``full``, ``head`` and its fields.
    """

    def __init__(self, m, p, S, id_bits):
        ls = max((S - 1).bit_length(), 1)
        mk = Signal
        self.alloc, self.alloc_err, self.free = mk(name=f"{p}_alloc"), mk(), mk()
        self.alloc_id, self.alloc_len = mk(id_bits), mk(LEN_BITS)
        self.alloc_resp = mk(2)
        self.resp_set, self.resp_slot, self.resp_val = mk(), mk(ls), mk(2)
        self.done_set, self.done_slot = mk(), mk(ls)
        self.done2_set, self.done2_slot = mk(), mk(ls)
        self.tail = mk(ls, name=f"{p}_tail")
        self.head = mk(ls, name=f"{p}_head")
        used = mk(range(S + 1), name=f"{p}_used")
        self.full = used == S
        ids = [mk(id_bits, name=f"{p}_id{i}") for i in range(S)]
        lens = [mk(LEN_BITS, name=f"{p}_len{i}") for i in range(S)]
        resps = [mk(2, name=f"{p}_resp{i}") for i in range(S)]
        dones = [mk(name=f"{p}_done{i}") for i in range(S)]
        m.d.sync += used.eq(used + self.alloc - self.free)
        with m.If(self.alloc):
            m.d.sync += self.tail.eq(Mux(self.tail == S - 1, 0, self.tail + 1))
        with m.If(self.free):
            m.d.sync += self.head.eq(Mux(self.head == S - 1, 0, self.head + 1))
        for i in range(S):
            with m.If(self.alloc & (self.tail == i)):
                m.d.sync += [ids[i].eq(self.alloc_id), lens[i].eq(self.alloc_len),
                             resps[i].eq(self.alloc_resp), dones[i].eq(self.alloc_err)]
            with m.If(self.resp_set & (self.resp_slot == i)):
                m.d.sync += resps[i].eq(self.resp_val)
            with m.If((self.done_set & (self.done_slot == i)) |
                      (self.done2_set & (self.done2_slot == i))):
                m.d.sync += dones[i].eq(1)
            with m.If(self.free & (self.head == i)):
                m.d.sync += dones[i].eq(0)
        self.head_id = select(self.head, ids)
        self.head_len = select(self.head, lens)
        self.head_resp = select(self.head, resps)
        self.head_done = select(self.head, dones)


class NocToAxi(wiring.Component):
    """Target bridge at an HBM channel node: NoC requests -> AXI4 manager, R / B -> NoC
    responses.

    Parameters
    ----------
    config : JalapenoConfig

    Members
    -------
    i_req_hdr, i_req_data : In(stream)
        From ``NocMemFabric.o_mreq_hdr[n]`` / ``o_mreq_data[n]``.
    o_resp_hdr, o_resp_data : Out(stream)
        To ``NocMemFabric.i_mresp_hdr[n]`` / ``i_mresp_data[n]``.
    m_axi : Out(AxiSignature(addr_width=log2(hbm.channel_bytes), data_width=8 *
        hbm.data_bytes, id_width=hbm.id_bits, user_width=models.hbm.USER_BITS))
        To one :class:`rtl.mem.hbm.HbmChannel`: local address (:func:`models.hbm.route`),
        full-width INCR bursts, AxUSER = the verdict (:class:`models.hbm.User`: OK or an
        injected error kind).
    i_err_kind, i_err_base, i_err_limit : In
        Error injection on global addresses, as on :class:`rtl.mem.hbm.HbmStub` (tests).

    Behaviour: requests become AR / AW in arrival order (a WRITE's beats follow its AW
    on W, strobes from the flit); the requester, ``id`` and ``len`` of each wait in a
    read and a write queue (``hbm.max_outstanding`` deep). A READ_RESP header (status =
    the first R beat's ``rresp``) leaves with the first R beat available, then the beats;
    a WRITE_RESP per B, between read responses. The channel answers in order, so the
    queues pair responses with requests.

    Latency: combinational both ways (header -> AR, first R beat -> header).
    """

    def __init__(self, config: JalapenoConfig):
        self.cfg = config
        h = config.hbm
        self.la = _log2(h.channel_bytes)
        super().__init__({
            **_noc_members(config, False),
            "m_axi": Out(AxiSignature(addr_width=self.la, data_width=8 * h.data_bytes,
                                      id_width=h.id_bits, user_width=USER_BITS)),
            "i_err_kind": In(ERR_KIND_BITS), "i_err_base": In(32), "i_err_limit": In(32),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, h, a = self.cfg, self.cfg.hbm, self.m_axi
        lw, g, nc = _log2(h.data_bytes), _log2(h.interleave_bytes), _log2(h.channels)
        hq, dq = self.i_req_hdr, self.i_req_data
        hp = hq.payload
        nl = ni_header_layout(cfg.noc)
        info = data.StructLayout({"node_x": nl.members["node_x"], "node_y": nl.members["node_y"],
                                  "id": cfg.noc.id_bits, "len": cfg.noc.len_bits})
        m.submodules.rinfo = rq = Queue(info, h.max_outstanding)
        m.submodules.winfo = wq = Queue(info, h.max_outstanding)
        for q in (rq, wq):
            m.d.comb += [q.i.payload.node_x.eq(hp.node_x), q.i.payload.node_y.eq(hp.node_y),
                         q.i.payload.id.eq(hp.id), q.i.payload.len.eq(hp.len)]
        # local address and injected verdict (models.hbm.route, burst_verdict's injection)
        addr = hp.addr
        local = Cat(addr[:g], addr[g + nc:g + nc + self.la - g])
        start, end = Signal(34), Signal(34)
        m.d.comb += [start.eq(Cat(Const(0, lw), addr[lw:])),
                     end.eq(start + ((hp.len + 1) << lw) - 1)]
        inject = (self.i_err_kind != ErrKind.OFF) & (start < self.i_err_limit) & \
            (end >= self.i_err_base)
        user = Mux(inject, self.i_err_kind, User.OK)
        wbusy = Signal()
        is_rd = hp.op == MemOp.READ
        is_wr = hp.op == MemOp.WRITE
        m.d.comb += [
            a.araddr.eq(local), a.arlen.eq(hp.len), a.arsize.eq(lw), a.arburst.eq(Burst.INCR),
            a.arid.eq(0), a.aruser.eq(user),
            a.awaddr.eq(local), a.awlen.eq(hp.len), a.awsize.eq(lw), a.awburst.eq(Burst.INCR),
            a.awid.eq(0), a.awuser.eq(user),
            a.arvalid.eq(hq.valid & is_rd & ~wbusy & rq.i.ready),
            a.awvalid.eq(hq.valid & is_wr & ~wbusy & wq.i.ready),
            rq.i.valid.eq(a.arvalid & a.arready), wq.i.valid.eq(a.awvalid & a.awready),
            hq.ready.eq((a.arvalid & a.arready) | (a.awvalid & a.awready) |
                        (hq.valid & ~is_rd & ~is_wr & ~wbusy)),   # responses: not for us
        ]
        with m.If(a.awvalid & a.awready):
            m.d.sync += wbusy.eq(1)
        m.d.comb += [a.wvalid.eq(wbusy & dq.valid), dq.ready.eq(wbusy & a.wready),
                     a.wdata.eq(dq.payload.data), a.wstrb.eq(dq.payload.strb),
                     a.wlast.eq(dq.payload.last)]
        with m.If(dq.valid & dq.ready & dq.payload.last):
            m.d.sync += wbusy.eq(0)
        # responses: B between read responses, a read response's beats back to back
        oh, od = self.o_resp_hdr, self.o_resp_data
        op = oh.payload
        rbusy = Signal()
        b_go = ~rbusy & a.bvalid & wq.o.valid
        r_go = ~rbusy & ~b_go & a.rvalid & rq.o.valid
        wi, ri = wq.o.payload, rq.o.payload
        m.d.comb += [oh.valid.eq(b_go | r_go),
                     op.op.eq(Mux(b_go, MemOp.WRITE_RESP, MemOp.READ_RESP)),
                     op.addr.eq(Mux(b_go, a.bresp, a.rresp)),
                     op.len.eq(Mux(b_go, 0, ri.len)), op.id.eq(Mux(b_go, wi.id, ri.id)),
                     op.node_x.eq(Mux(b_go, wi.node_x, ri.node_x)),
                     op.node_y.eq(Mux(b_go, wi.node_y, ri.node_y)),
                     a.bready.eq(b_go & oh.ready), wq.o.ready.eq(b_go & oh.ready)]
        with m.If(r_go & oh.ready):
            m.d.sync += rbusy.eq(1)
        m.d.comb += [od.valid.eq(rbusy & a.rvalid), a.rready.eq(rbusy & od.ready),
                     od.payload.data.eq(a.rdata), od.payload.last.eq(a.rlast)]
        with m.If(a.rvalid & a.rready & a.rlast):
            m.d.sync += rbusy.eq(0)
        m.d.comb += rq.o.ready.eq(a.rvalid & a.rready & a.rlast)
        return m


def attach_initiator(m, fab, node: int, bridge: AxiToNoc) -> None:
    """Join an :class:`AxiToNoc` to the initiator side of ``fab`` (a NocMemFabric) at ``node``."""
    wiring.connect(m, bridge.o_req_hdr, fab.i_req_hdr[node])
    wiring.connect(m, bridge.o_req_data, fab.i_req_data[node])
    wiring.connect(m, fab.o_resp_hdr[node], bridge.i_resp_hdr)
    wiring.connect(m, fab.o_resp_data[node], bridge.i_resp_data)


def attach_hbm_channels(m, cfg: JalapenoConfig, fab) -> tuple[list, list]:
    """One :class:`rtl.mem.hbm.HbmChannel` per HBM channel, behind a :class:`NocToAxi` at
    its node (``models.axi_noc.channel_node``) on the target side of ``fab``.

    Returns ``(channels, targets)``; ``targets[i]`` is None for a channel without a node
    (never addressed: the initiator bridges answer DECERR), whose channel still exists
    (its backdoor stays reachable).
    """
    chans, targets = [], []
    for i in range(cfg.hbm.channels):
        node = model.channel_node(cfg, i)
        ch = shared_instance(m, HbmChannel(cfg.hbm), f"ch{i}", key=cfg.hbm)   # rtl.lib.shared
        chans.append(ch)
        if node is None:
            targets.append(None)
            continue
        tgt = shared_instance(m, NocToAxi(cfg), f"tgt{i}", key=cfg,
                              summary=param_summary(cfg.noc))
        wiring.connect(m, fab.o_mreq_hdr[node], tgt.i_req_hdr)
        wiring.connect(m, fab.o_mreq_data[node], tgt.i_req_data)
        wiring.connect(m, tgt.o_resp_hdr, fab.i_mresp_hdr[node])
        wiring.connect(m, tgt.o_resp_data, fab.i_mresp_data[node])
        wiring.connect(m, tgt.m_axi, ch.s_axi)
        targets.append(tgt)
    return chans, targets
