"""AXI4 and AXI4-Lite as ``wiring.Signature``\\ s, written from the manager side.

A block declares ``"m_axi": Out(AxiSignature(...))`` (manager) or
``"s_axi": In(AxiSignature(...))`` (subordinate); ``wiring.connect`` joins a manager to a
subordinate and ``.array(n)`` makes n ports. Amaranth names the Verilog ports
``<member>__<signal>`` (``m_axi__awaddr``), so a testbench binds them with
``cocotbext.axi.AxiBus.from_prefix(dut, "m_axi_")`` (cocotb-bus adds the second ``_``).

Supported AXI4 subset (docs/memory.md): AW/W/B/AR/R with ID, LEN (1..256 beats), SIZE,
BURST, WSTRB, RESP, optional AxUSER; no AxLOCK/CACHE/PROT/QOS/REGION (cocotbext-axi
treats them as optional). Encodings: :mod:`models.axi`.
"""
from __future__ import annotations

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from models.axi import BURST_BITS, LEN_BITS, RESP_BITS, SIZE_BITS

__all__ = ["AxiSignature", "AxiLiteSignature"]


def _positive(name: str, value, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise TypeError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _data_width(value) -> int:
    _positive("data_width", value, 8)
    if value & (value - 1):
        raise ValueError(f"data_width must be a power of two >= 8, got {value}")
    return value


class _BusSignature(wiring.Signature):
    """A bus signature compared by its parameters (so two instances connect)."""

    def _params(self) -> tuple:
        raise NotImplementedError

    def __eq__(self, other):
        return type(other) is type(self) and other._params() == self._params()

    def __hash__(self):
        return hash((type(self), self._params()))

    def __repr__(self):
        return f"{type(self).__name__}{self._params()}"


class AxiSignature(_BusSignature):
    """One AXI4 port, manager side.

    Parameters
    ----------
    addr_width : int
    data_width : int
        Bits of ``wdata``/``rdata`` (a power of two >= 8); ``wstrb`` has a bit per byte.
    id_width : int
    user_width : int
        Bits of ``aruser``/``awuser`` (0: no such members).

    Members
    -------
    aw*, w*, ar*: Out (valid, payload) / In (ready); b*, r*: In (valid, payload) / Out
    (ready), as in the AXI4 specification.
    """

    def __init__(self, *, addr_width: int, data_width: int, id_width: int, user_width: int = 0):
        self.addr_width = _positive("addr_width", addr_width)
        self.data_width = _data_width(data_width)
        self.id_width = _positive("id_width", id_width)
        self.user_width = _positive("user_width", user_width, 0)
        strb = data_width // 8
        members = {}
        for ch in ("aw", "ar"):
            members |= {f"{ch}id": Out(id_width), f"{ch}addr": Out(addr_width),
                        f"{ch}len": Out(LEN_BITS), f"{ch}size": Out(SIZE_BITS),
                        f"{ch}burst": Out(BURST_BITS)}
            if user_width:
                members[f"{ch}user"] = Out(user_width)
            members |= {f"{ch}valid": Out(1), f"{ch}ready": In(1)}
        members |= {
            "wdata": Out(data_width), "wstrb": Out(strb), "wlast": Out(1),
            "wvalid": Out(1), "wready": In(1),
            "bid": In(id_width), "bresp": In(RESP_BITS), "bvalid": In(1), "bready": Out(1),
            "rid": In(id_width), "rdata": In(data_width), "rresp": In(RESP_BITS),
            "rlast": In(1), "rvalid": In(1), "rready": Out(1),
        }
        super().__init__(members)

    def _params(self):
        return (self.addr_width, self.data_width, self.id_width, self.user_width)


class AxiLiteSignature(_BusSignature):
    """One AXI4-Lite port, manager side (registers: the host's view of the chip).

    Parameters
    ----------
    addr_width : int
    data_width : int
        32 or 64.

    Members
    -------
    awaddr, awprot, awvalid / awready; wdata, wstrb, wvalid / wready; bresp, bvalid /
    bready; araddr, arprot, arvalid / arready; rdata, rresp, rvalid / rready.
    """

    def __init__(self, *, addr_width: int, data_width: int = 32):
        self.addr_width = _positive("addr_width", addr_width)
        if data_width not in (32, 64):
            raise ValueError(f"AXI4-Lite data_width must be 32 or 64, got {data_width!r}")
        self.data_width = data_width
        super().__init__({
            "awaddr": Out(addr_width), "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wvalid": Out(1),
            "wready": In(1),
            "bresp": In(RESP_BITS), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_width), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
            "rdata": In(data_width), "rresp": In(RESP_BITS), "rvalid": In(1), "rready": Out(1),
        })

    def _params(self):
        return (self.addr_width, self.data_width)
