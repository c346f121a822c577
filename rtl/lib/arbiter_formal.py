"""Formal harness of :func:`rtl.lib.arbiter.round_robin` (docs/formal.md).

Free requests; the one environment rule is that a raised request stays raised until it
is granted (what every user of the arbiter does: a router input VC keeps requesting its
output until its flit leaves). Checked: the grant is one-hot or zero, zero iff there is
no request, only to a requester, and a held request is granted within ``n`` cycles
(a counter of the cycles each request has waited).
"""
from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal
from amaranth.hdl import Fragment

from rtl.lib.arbiter import round_robin
from rtl.lib.harness_formal import AnySeq, FormalHarness, Proof, internal, past

__all__ = ["ArbiterHarness", "PROOFS"]


class ArbiterHarness(FormalHarness):
    """``round_robin`` over ``n`` requests.

    Parameters
    ----------
    n : int
    """

    def __init__(self, n: int):
        super().__init__()
        self.n = n

    def build(self, m, p):
        n = self.n
        req = Signal(n, name="req")
        m.d.comb += req.eq(AnySeq(n))
        arb = Module()
        grant = Cat(*round_robin(arb, list(req), "arb"))
        m.submodules.arb = frag = Fragment.get(arb, None)
        held = past(m, req & ~grant, "req_waiting")
        p.assume("env.request_held_until_granted", (held & ~req) == 0)
        p.check("arb.grant_one_hot_or_zero", (grant & (grant - 1)[:n]) == 0)
        p.check("arb.grant_only_to_requester", (grant & ~req) == 0)
        p.check("arb.grant_iff_request", grant.any() == req.any())
        for i in range(n):
            wait = Signal(range(n + 1), name=f"wait{i}")
            m.d.sync += wait.eq(Mux(req[i] & ~grant[i], wait + 1, 0))
            p.check(f"arb.no_starvation_{i}", wait < n)
        mask = internal(frag, "arb_mask")
        p.check("arb.mask_is_thermometer", (mask | (mask << 1)[:n]) == mask)


PROOFS = [
    Proof("arbiter_4", "rtl/lib/arbiter.py::round_robin", "round-robin arbiter, 4 requests",
          lambda: ArbiterHarness(4), "prove", 6,
          why="k-induction with the mask invariant (thermometer) closes"),
    Proof("arbiter_10", "rtl/lib/arbiter.py::round_robin",
          "round-robin arbiter, 10 requests (a router's local output)",
          lambda: ArbiterHarness(10), "prove", 12,
          why="k-induction with the mask invariant closes; depth > n covers the longest wait"),
]
