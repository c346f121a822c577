"""Network interfaces: memory requests/responses <-> packets (docs/noc.md).

A memory message is a header and, for writes and read responses, ``len + 1`` data
beats. The packetizer turns one into a packet: the head flit carries the header
(``op``, ``addr``, ``len``, ``id`` packed LSB first into the payload), one body/tail
flit per data beat follows. Messages without data (read requests, write responses)
are one SINGLE flit. The depacketizer does the reverse and reports the sender's
coordinates, which is where a memory sends its response. Responses put their status
in ``addr[0:2]`` (0 = OKAY, 2 = SLVERR, AXI-style).

Requests travel on VC 0 and responses on VC 1 (``NocConfig.VC_REQ`` / ``VC_RESP``).
"""
from amaranth import Module, Mux, Signal, Value
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from models.config import NocConfig
from rtl.noc.flit import FlitKind, flit_layout

__all__ = ["MemOp", "mem_header_layout", "ni_header_layout", "beat_layout",
           "NocPacketizer", "NocDepacketizer", "has_data"]


class MemOp(enum.IntEnum, shape=2):
    READ = 0          # request, no data; answered by READ_RESP with len + 1 beats
    WRITE = 1         # request with len + 1 beats; answered by WRITE_RESP
    READ_RESP = 2
    WRITE_RESP = 3


def has_data(op: int) -> bool:
    return op in (MemOp.WRITE, MemOp.READ_RESP)


def mem_header_layout(config: NocConfig) -> data.StructLayout:
    """The header as carried in a head flit's payload."""
    return data.StructLayout({
        "op": MemOp, "addr": config.addr_bits, "len": config.len_bits, "id": config.id_bits,
    })


def ni_header_layout(config: NocConfig) -> data.StructLayout:
    """The header on the NI streams: plus the other end's coordinates (destination on
    the packetizer, source on the depacketizer)."""
    return data.StructLayout({
        "op": MemOp, "addr": config.addr_bits, "len": config.len_bits, "id": config.id_bits,
        "node_x": config.coord_bits, "node_y": config.coord_bits,
    })


def beat_layout(config: NocConfig) -> data.StructLayout:
    return data.StructLayout({"data": config.data_bits, "last": 1})


class NocPacketizer(wiring.Component):
    """Header + data beats -> flits of one packet on one VC.

    Parameters
    ----------
    config : NocConfig
    x, y : int
        This node (the router stamps it into every flit's ``src``).
    vc : int

    Members
    -------
    i_hdr : In(stream.Signature(ni_header_layout(config)))
    i_data : In(stream.Signature(beat_layout(config)))
        ``len + 1`` beats after a WRITE / READ_RESP header (``last`` is not needed: the
        length comes from the header).
    o_flit : Out(stream.Signature(flit_layout(config)))
        To ``NocMesh.i_inject[node][vc]``.

    Latency: combinational (a flit per cycle, no bubble between packets).
    """

    def __init__(self, config: NocConfig, x: int, y: int, vc: int):
        self._config, self.x, self.y, self.vc = config, x, y, vc
        super().__init__({
            "i_hdr": In(stream.Signature(ni_header_layout(config))),
            "i_data": In(stream.Signature(beat_layout(config))),
            "o_flit": Out(stream.Signature(flit_layout(config))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        in_data = Signal()
        count = Signal(cfg.len_bits)
        length = Signal(cfg.len_bits)
        dst_x = Signal(cfg.coord_bits)
        dst_y = Signal(cfg.coord_bits)
        h = self.i_hdr.payload
        op = Value.cast(h.op)
        with_data = (op == MemOp.WRITE) | (op == MemOp.READ_RESP)
        f = self.o_flit.payload
        hdr = Signal(mem_header_layout(cfg))
        m.d.comb += [hdr.op.eq(h.op), hdr.addr.eq(h.addr), hdr.len.eq(h.len), hdr.id.eq(h.id)]
        # vc and src are stamped by the router on injection (NocRouter.i_inject)
        fire = self.o_flit.valid & self.o_flit.ready
        with m.If(~in_data):
            m.d.comb += [
                self.o_flit.valid.eq(self.i_hdr.valid),
                self.i_hdr.ready.eq(self.o_flit.ready),
                f.kind.eq(Mux(with_data, FlitKind.HEAD, FlitKind.SINGLE)),
                f.dst_x.eq(h.node_x), f.dst_y.eq(h.node_y),
                f.payload.eq(hdr),
            ]
            with m.If(fire & with_data):
                m.d.sync += [in_data.eq(1), count.eq(0), length.eq(h.len),
                             dst_x.eq(h.node_x), dst_y.eq(h.node_y)]
        with m.Else():
            last = count == length
            m.d.comb += [
                self.o_flit.valid.eq(self.i_data.valid),
                self.i_data.ready.eq(self.o_flit.ready),
                f.kind.eq(Mux(last, FlitKind.TAIL, FlitKind.BODY)),
                f.dst_x.eq(dst_x), f.dst_y.eq(dst_y),
                f.payload.eq(self.i_data.payload.data),
            ]
            with m.If(fire):
                m.d.sync += count.eq(count + 1)
                with m.If(last):
                    m.d.sync += in_data.eq(0)
        return m


class NocDepacketizer(wiring.Component):
    """Flits of one VC -> header (with the sender's coordinates) + data beats.

    Members
    -------
    i_flit : In(stream.Signature(flit_layout(config)))
        From ``NocMesh.o_eject[node][vc]`` (packets arrive whole, in order per sender).
    o_hdr : Out(stream.Signature(ni_header_layout(config)))
    o_data : Out(stream.Signature(beat_layout(config)))
        ``last`` marks the tail flit's beat.

    Latency: combinational.
    """

    def __init__(self, config: NocConfig):
        self._config = config
        super().__init__({
            "i_flit": In(stream.Signature(flit_layout(config))),
            "o_hdr": Out(stream.Signature(ni_header_layout(config))),
            "o_data": Out(stream.Signature(beat_layout(config))),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        f = self.i_flit.payload
        kind = Value.cast(f.kind)
        hdr = Signal(mem_header_layout(cfg))
        m.d.comb += hdr.eq(f.payload[:hdr.shape().size])
        o = self.o_hdr.payload
        m.d.comb += [o.op.eq(hdr.op), o.addr.eq(hdr.addr), o.len.eq(hdr.len), o.id.eq(hdr.id),
                     o.node_x.eq(f.src_x), o.node_y.eq(f.src_y),
                     self.o_data.payload.data.eq(f.payload), self.o_data.payload.last.eq(kind[1])]
        with m.If(kind[0]):
            m.d.comb += [self.o_hdr.valid.eq(self.i_flit.valid),
                         self.i_flit.ready.eq(self.o_hdr.ready)]
        with m.Else():
            m.d.comb += [self.o_data.valid.eq(self.i_flit.valid),
                         self.i_flit.ready.eq(self.o_data.ready)]
        return m
