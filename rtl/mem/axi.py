"""AXI4 port helpers: flat, cocotbext-axi compatible member names.

Amaranth names a top-level port after its signature member, so a member called
``s_axi_awaddr`` becomes the Verilog port ``s_axi_awaddr`` and
``cocotbext.axi.AxiBus.from_prefix(dut, "s_axi")`` binds it directly. Signatures are
written from the initiator (master) side, as in ``amaranth.lib.wiring``; a slave takes
``wiring.flipped`` members via :func:`axi4_members` with ``master=False``.

Supported subset (see docs/memory.md): AW/W/B/AR/R with ID, LEN (1..256 beats), SIZE,
BURST (FIXED and INCR; WRAP is answered with SLVERR by the HBM stub), WSTRB, RESP.
No AxLOCK/CACHE/PROT/QOS/REGION/USER on the ports (cocotbext-axi treats them as
optional).
"""
from __future__ import annotations

from amaranth.lib.wiring import In, Out

__all__ = ["AXI_CHANNELS", "axi4_members", "AxiView", "connect_axi", "RESP_OKAY",
           "RESP_EXOKAY", "RESP_SLVERR", "RESP_DECERR", "BURST_FIXED", "BURST_INCR",
           "BURST_WRAP"]

RESP_OKAY, RESP_EXOKAY, RESP_SLVERR, RESP_DECERR = 0, 1, 2, 3
BURST_FIXED, BURST_INCR, BURST_WRAP = 0, 1, 2


def _channels(addr_bits: int, data_bytes: int, id_bits: int):
    """name -> (width, driven by master?)"""
    return {
        "awid": (id_bits, True), "awaddr": (addr_bits, True), "awlen": (8, True),
        "awsize": (3, True), "awburst": (2, True), "awvalid": (1, True), "awready": (1, False),
        "wdata": (8 * data_bytes, True), "wstrb": (data_bytes, True), "wlast": (1, True),
        "wvalid": (1, True), "wready": (1, False),
        "bid": (id_bits, False), "bresp": (2, False), "bvalid": (1, False), "bready": (1, True),
        "arid": (id_bits, True), "araddr": (addr_bits, True), "arlen": (8, True),
        "arsize": (3, True), "arburst": (2, True), "arvalid": (1, True), "arready": (1, False),
        "rid": (id_bits, False), "rdata": (8 * data_bytes, False), "rresp": (2, False),
        "rlast": (1, False), "rvalid": (1, False), "rready": (1, True),
    }


AXI_CHANNELS = tuple(_channels(32, 4, 1))


def axi4_members(prefix: str, *, addr_bits: int, data_bytes: int, id_bits: int,
                 master: bool) -> dict:
    """Signature members ``<prefix>_<signal>`` of one AXI4 port (master or slave side)."""
    out = {}
    for name, (w, by_master) in _channels(addr_bits, data_bytes, id_bits).items():
        out[f"{prefix}_{name}"] = (Out if by_master == master else In)(w)
    return out


class AxiView:
    """``view.awaddr`` is ``getattr(owner, prefix + "_awaddr")``: the port as one object."""

    def __init__(self, owner, prefix: str):
        self._owner, self._prefix = owner, prefix

    def __getattr__(self, name):
        return getattr(self._owner, f"{self._prefix}_{name}")


def connect_axi(m, master: AxiView, slave: AxiView) -> None:
    """Combinational wiring of a master port to a slave port (same widths)."""
    for name, (_w, by_master) in _channels(32, 4, 1).items():
        src, dst = (master, slave) if by_master else (slave, master)
        m.d.comb += getattr(dst, name).eq(getattr(src, name))
