"""Round-robin arbitration."""
from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal

__all__ = ["round_robin"]


def round_robin(m: Module, reqs: list, name: str) -> list:
    """Round-robin arbiter: one-hot grants for ``reqs``; the winner gets lowest priority next.

    A thermometer mask marks the requesters after the last winner; the lowest masked
    request wins, else the lowest request. Grants are combinational (same cycle as the
    requests), the mask a register updated whenever some request is raised.

    Parameters
    ----------
    m : Module
        Where the logic goes.
    reqs : list of 1-bit Value
    name : str
        Prefix of the arbiter's signals.

    Returns
    -------
    list of 1-bit Value, one grant per request (at most one high).
    """
    n = len(reqs)
    if n == 1:
        return [reqs[0]]
    req = Signal(n, name=f"{name}_req")
    mask = Signal(n, name=f"{name}_mask", init=(1 << n) - 1)
    sel = Signal(n, name=f"{name}_sel")
    grant = Signal(n, name=f"{name}_grant")
    m.d.comb += [
        req.eq(Cat(*reqs)),
        sel.eq(Mux((req & mask).any(), req & mask, req)),
        grant.eq(sel & (~sel + 1)[:n]),          # lowest set bit
    ]
    with m.If(req.any()):
        m.d.sync += mask.eq(~(grant | (grant - 1))[:n])   # requesters above the winner
    return [grant[i] for i in range(n)]
