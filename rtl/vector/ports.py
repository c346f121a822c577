"""Memory-port signatures of the vector unit (imported by the tensor core).

Both are written from the side that issues the address (the vector unit), so the
vector unit declares ``Out(MemReadSignature(...))`` and the tensor core, which owns
the SRAMs, connects the flipped side (``In(...)``) or uses ``wiring.connect``.
"""
from __future__ import annotations

from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["MemReadSignature", "MemWriteSignature"]


def _check(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise TypeError(f"{name} must be a positive int, got {value!r}")
    return value


class MemReadSignature(wiring.Signature):
    """A synchronous SRAM read port, initiator side.

    ``data`` holds the word at ``addr`` in the cycle *after* a cycle with ``en`` high
    (one cycle of read latency, like an ``amaranth.lib.memory`` read port in the sync
    domain). What ``data`` holds after a cycle without ``en`` is unspecified.

    Parameters
    ----------
    addr_bits, data_bits : int
        Address and word widths.

    Members
    -------
    addr : Out(addr_bits)
    en : Out(1)
    data : In(data_bits)
    """

    def __init__(self, addr_bits: int, data_bits: int):
        self.addr_bits = _check("addr_bits", addr_bits)
        self.data_bits = _check("data_bits", data_bits)
        super().__init__({"addr": Out(addr_bits), "en": Out(1), "data": In(data_bits)})

    def __eq__(self, other):
        return (type(other) is MemReadSignature and other.addr_bits == self.addr_bits
                and other.data_bits == self.data_bits)

    def __hash__(self):
        return hash((MemReadSignature, self.addr_bits, self.data_bits))

    def __repr__(self):
        return f"MemReadSignature({self.addr_bits}, {self.data_bits})"


class MemWriteSignature(wiring.Signature):
    """A synchronous SRAM write port, initiator side: ``data`` is written to ``addr``
    at the clock edge ending a cycle with ``en`` high.

    Parameters
    ----------
    addr_bits, data_bits : int
        Address and word widths.

    Members
    -------
    addr : Out(addr_bits)
    data : Out(data_bits)
    en : Out(1)
    """

    def __init__(self, addr_bits: int, data_bits: int):
        self.addr_bits = _check("addr_bits", addr_bits)
        self.data_bits = _check("data_bits", data_bits)
        super().__init__({"addr": Out(addr_bits), "data": Out(data_bits), "en": Out(1)})

    def __eq__(self, other):
        return (type(other) is MemWriteSignature and other.addr_bits == self.addr_bits
                and other.data_bits == self.data_bits)

    def __hash__(self):
        return hash((MemWriteSignature, self.addr_bits, self.data_bits))

    def __repr__(self):
        return f"MemWriteSignature({self.addr_bits}, {self.data_bits})"
