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


class _MemPortSignature(wiring.Signature):
    """An SRAM port signature fixed by its address and word widths (compared by them)."""

    def __init__(self, addr_bits: int, data_bits: int, members: dict):
        self.addr_bits = _check("addr_bits", addr_bits)
        self.data_bits = _check("data_bits", data_bits)
        super().__init__(members)

    def __eq__(self, other):
        return (type(other) is type(self) and other.addr_bits == self.addr_bits
                and other.data_bits == self.data_bits)

    def __hash__(self):
        return hash((type(self), self.addr_bits, self.data_bits))

    def __repr__(self):
        return f"{type(self).__name__}({self.addr_bits}, {self.data_bits})"


class MemReadSignature(_MemPortSignature):
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
        super().__init__(addr_bits, data_bits,
                         {"addr": Out(addr_bits), "en": Out(1), "data": In(data_bits)})


class MemWriteSignature(_MemPortSignature):
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
        super().__init__(addr_bits, data_bits, {"addr": Out(addr_bits), "data": Out(data_bits), "en": Out(1)})
