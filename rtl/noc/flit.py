"""Flit format and the credit-based link between routers (docs/noc.md).

A packet is a HEAD flit, zero or more BODY flits and a TAIL flit, or one SINGLE flit
(head and tail at once). ``kind`` bit 0 means "head", bit 1 means "tail". The routing
fields (``dst_x``, ``dst_y``) are read from head flits only; network interfaces copy
them (and ``src``) into every flit so that a waveform is readable, but the routers
forward body flits along the route their head took (wormhole switching).

The payload is ``data_bits`` of data plus ``data_bits // 8`` strobe bits above them
(:func:`payload_bits`): a write's data beat carries its AXI WSTRB across the mesh
(rtl/soc/axi_noc.py); head flits and read data leave the strobe lanes zero.
"""
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from models.config import NocConfig

__all__ = ["FlitKind", "Port", "flit_layout", "payload_bits", "LinkSignature"]


class FlitKind(enum.IntEnum, shape=2):
    """Position of a flit in its packet: bit 0 = head, bit 1 = tail."""

    BODY = 0b00
    HEAD = 0b01
    TAIL = 0b10
    SINGLE = 0b11


class Port(enum.IntEnum, shape=3):
    """Router port numbers. North is y - 1, south is y + 1, east x + 1, west x - 1."""

    N = 0
    E = 1
    S = 2
    W = 3
    L = 4      # local: injection from / ejection to the node's network interface


def payload_bits(config: NocConfig) -> int:
    """Flit payload: one data beat (``data_bits``) and its byte strobes (``data_bits // 8``)."""
    return config.data_bits + config.data_bits // 8


def flit_layout(config: NocConfig) -> data.StructLayout:
    """One flit: kind, virtual channel, destination and source coordinates, payload."""
    cb = config.coord_bits
    return data.StructLayout({
        "kind": FlitKind,
        "vc": range(config.vcs),
        "dst_x": cb,
        "dst_y": cb,
        "src_x": cb,
        "src_y": cb,
        "payload": payload_bits(config),
    })


class LinkSignature(wiring.Signature):
    """A router-to-router link, written from the sending side.

    Members
    -------
    valid : Out(1)
        ``flit`` is valid this cycle. There is no ready: the sender only sends on a
        virtual channel for which it holds a credit.
    flit : Out(flit_layout(config))
    credit : In(config.vcs)
        One pulse on bit ``v`` returns one credit of VC ``v`` (a flit left the
        receiver's VC ``v`` buffer).
    """

    def __init__(self, config: NocConfig):
        super().__init__({
            "valid": Out(1),
            "flit": Out(flit_layout(config)),
            "credit": In(config.vcs),
        })
