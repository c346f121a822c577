"""Network interfaces: memory requests/responses <-> packets (docs/noc.md).

A memory message is a header and, for writes and read responses, ``len + 1`` data
beats; the header's fields, the op codes and the status of a response (an AXI
``Resp`` in ``addr[0:2]``) are defined in :mod:`models.noc` (``mem_header_fields``,
``MemOp``, ``status``), and the layouts here are built from them. The packetizer turns a
message into a packet: the head flit carries the header (packed LSB first into the
payload), one body/tail flit per data beat follows. Messages without data (read
requests, write responses) are one SINGLE flit. The depacketizer does the reverse and
reports the sender's coordinates, which is where a memory sends its response.

Requests travel on VC 0 and responses on VC 1 (``NocConfig.VC_REQ`` / ``VC_RESP``).
"""
import types

from amaranth import Cat, Module, Mux, Signal, Value
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from models import noc as noc_model
from models.config import NocConfig
from rtl.noc.flit import FlitKind, flit_layout

__all__ = ["MemOp", "mem_header_layout", "ni_header_layout", "beat_layout",
           "NocPacketizer", "NocDepacketizer"]

#: :class:`models.noc.MemOp` as an Amaranth enum of ``models.noc.MEM_OP_BITS`` bits.
MemOp = types.new_class(
    "MemOp", (enum.IntEnum,), {"shape": noc_model.MEM_OP_BITS},
    lambda ns: [ns.__setitem__(op.name, op.value) for op in noc_model.MemOp])


def mem_header_layout(config: NocConfig) -> data.StructLayout:
    """The header as carried in a head flit's payload (``models.noc.mem_header_fields``)."""
    return data.StructLayout({name: MemOp if name == "op" else bits
                              for name, bits in noc_model.mem_header_fields(config).items()})


def ni_header_layout(config: NocConfig) -> data.StructLayout:
    """The header on the NI streams: plus the other end's coordinates (destination on
    the packetizer, source on the depacketizer)."""
    return data.StructLayout({**dict(mem_header_layout(config).members),
                              "node_x": config.coord_bits, "node_y": config.coord_bits})


def beat_layout(config: NocConfig) -> data.StructLayout:
    """One data beat; ``last`` marks the message's final beat; ``strb``: the byte strobes
    of a WRITE beat (AXI WSTRB; carried in the flit's strobe lanes, zero in responses)."""
    return data.StructLayout({"data": config.data_bits, "last": 1,
                              "strb": config.data_bits // 8})


def _copy_header(dst, src, config: NocConfig) -> list:
    """Assignments of every header field of ``src`` to ``dst``."""
    return [getattr(dst, name).eq(getattr(src, name))
            for name in noc_model.mem_header_fields(config)]


class NocPacketizer(wiring.Component):
    """Header + data beats -> flits of one packet on one VC.

    Parameters
    ----------
    config : NocConfig

    Members
    -------
    i_hdr : In(stream.Signature(ni_header_layout(config)))
    i_data : In(stream.Signature(beat_layout(config)))
        ``len + 1`` beats after a WRITE / READ_RESP header (``last`` is not needed: the
        length comes from the header).
    o_flit : Out(stream.Signature(flit_layout(config)))
        To ``NocMesh.i_inject[node][vc]`` (the router stamps ``vc`` and ``src``).

    Latency: combinational (a flit per cycle, no bubble between packets).
    """

    def __init__(self, config: NocConfig):
        self._config = config
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
        with_data = Value.cast(h.op).matches(*[op for op in MemOp if noc_model.has_data(op)])
        f = self.o_flit.payload
        hdr = Signal(mem_header_layout(cfg))
        m.d.comb += _copy_header(hdr, h, cfg)
        # The flit's fields are built in signals of their own and the output is one
        # concatenation of them: ``vc`` and ``src`` are stamped by the router on injection
        # (NocRouter.i_inject), so they are constant zero here, and a constant slice of a
        # signal that a process also drives becomes ``always @* x[2] = 1'h0;`` in the
        # Verilog, which has no sensitivity and never runs (Icarus kept those bits X).
        kind = Signal(FlitKind)
        f_dst_x = Signal(cfg.coord_bits)
        f_dst_y = Signal(cfg.coord_bits)
        f_payload = Signal.like(f.payload)
        m.d.comb += [f.kind.eq(kind), f.vc.eq(0), f.dst_x.eq(f_dst_x), f.dst_y.eq(f_dst_y),
                     f.src_x.eq(0), f.src_y.eq(0), f.payload.eq(f_payload)]
        fire = self.o_flit.valid & self.o_flit.ready
        with m.If(~in_data):
            m.d.comb += [
                self.o_flit.valid.eq(self.i_hdr.valid),
                self.i_hdr.ready.eq(self.o_flit.ready),
                kind.eq(Mux(with_data, FlitKind.HEAD, FlitKind.SINGLE)),
                f_dst_x.eq(h.node_x), f_dst_y.eq(h.node_y),
                f_payload.eq(hdr),
            ]
            with m.If(fire & with_data):
                m.d.sync += [in_data.eq(1), count.eq(0), length.eq(h.len),
                             dst_x.eq(h.node_x), dst_y.eq(h.node_y)]
        with m.Else():
            last = count == length
            m.d.comb += [
                self.o_flit.valid.eq(self.i_data.valid),
                self.i_data.ready.eq(self.o_flit.ready),
                kind.eq(Mux(last, FlitKind.TAIL, FlitKind.BODY)),
                f_dst_x.eq(dst_x), f_dst_y.eq(dst_y),
                f_payload.eq(Cat(self.i_data.payload.data, self.i_data.payload.strb)),
            ]
            with m.If(fire):
                m.d.sync += count.eq(count + 1)
                with m.If(last):
                    m.d.sync += in_data.eq(0)
        return m


class NocDepacketizer(wiring.Component):
    """Flits of one VC -> header (with the sender's coordinates) + data beats.

    Parameters
    ----------
    config : NocConfig

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
        m.d.comb += _copy_header(o, hdr, cfg)
        m.d.comb += [o.node_x.eq(f.src_x), o.node_y.eq(f.src_y),
                     self.o_data.payload.data.eq(f.payload[:cfg.data_bits]),
                     self.o_data.payload.strb.eq(f.payload[cfg.data_bits:]),
                     self.o_data.payload.last.eq(kind[1])]
        with m.If(kind[0]):
            m.d.comb += [self.o_hdr.valid.eq(self.i_flit.valid),
                         self.i_flit.ready.eq(self.o_hdr.ready)]
        with m.Else():
            m.d.comb += [self.o_data.valid.eq(self.i_flit.valid),
                         self.i_flit.ready.eq(self.o_data.ready)]
        return m
