"""Formal harness of the token counters of :class:`rtl.soc.cmdproc_queues.TileDispatch`
(docs/formal.md, docs/command_processor.md).

The tiny preset's dispatch (2 tiles, queues of 4, 4-bit counters) with free pushes, unit
handshakes, completions and ``i_stop``; the entries' addresses and unit commands are
zero (the token logic never reads them). Checked for every tile and counter: it never
wraps below zero (a wait takes a token only from a non-zero counter) or above
``soc.token_max`` (a signal to a full counter is refused); such a signal raises an error
in that cycle, signals nothing (neither counter of the command moves) and is the only
way TOKEN_OVERFLOW is raised.
"""
from __future__ import annotations

import dataclasses

from amaranth import Cat, Value
from amaranth.hdl import Fragment
from amaranth.lib import data

from models.chip import TOKEN_OF
from models.config import PRESETS
from models.isa import IsaError, Queue, Token
from rtl.lib.harness_formal import AnySeq, FormalHarness, Proof, internal
from rtl.soc.cmdproc_queues import QUEUE_NAMES, TileDispatch, entry_layout

__all__ = ["TokenHarness", "PROOFS"]

FLAGS = ("wait_prev", "wait_next", "signal_prev", "signal_next")


class TokenHarness(FormalHarness):
    """``TileDispatch`` of ``config`` (default: the tiny preset) between free neighbours."""

    def __init__(self, config=None):
        super().__init__()
        self.cfg = config or PRESETS["tiny"]

    def build(self, m, p):
        cfg = self.cfg
        T, tmax = cfg.soc.tiles, cfg.soc.token_max
        d = TileDispatch(cfg)
        m.submodules.dut = frag = Fragment.get(d, None)
        m.d.comb += d.i_stop.eq(AnySeq(1))
        for t in range(T):
            for q in Queue:
                self._drive(m, d, t, q)
        cnt = {(t, k): internal(frag, f"tok{t}_{k.name}") for t in range(T) for k in Token}
        inc = {(t, k): internal(frag, f"inc{t}_{k.name}") for t in range(T) for k in Token}
        dec = {(t, k): internal(frag, f"dec{t}_{k.name}") for t in range(T) for k in Token}
        for (t, k), c in cnt.items():
            p.check(f"tokens.t{t}.{k.name}.never_below_zero", ~(dec[t, k] & ~inc[t, k]) | (c != 0))
            p.check(f"tokens.t{t}.{k.name}.never_above_max",
                    ~(inc[t, k] & ~dec[t, k]) | (c != tmax))
        overflows = []
        for t in range(T):
            for q in Queue:
                overflows.append(self._overflow(m, p, d, frag, t, q, cnt, inc))
        is_ovf = d.o_err_valid & (d.o_err_code == IsaError.TOKEN_OVERFLOW)
        p.check("tokens.overflow_only_from_a_full_counter", ~is_ovf | Cat(*overflows).any())
        p.cover("tokens.cover.overflow_raised", is_ovf)

    def _drive(self, m, d, t, q):
        """Free pushes (kind, flags, barrier; address and command zero), unit handshakes
        and completions."""
        n = QUEUE_NAMES[q]
        push = getattr(d, f"i_push_{n}")[t]
        e = push.payload
        m.d.comb += [push.valid.eq(AnySeq(1)), Value.cast(e.kind).eq(AnySeq(2)),
                     e.bar.eq(AnySeq(len(e.bar))), e.mask.eq(AnySeq(len(e.mask)))]
        m.d.comb += [getattr(e, f).eq(AnySeq(1)) for f in FLAGS]
        out = getattr(d, f"o_{n}")[t]
        done = getattr(d, f"i_{n}_done")[t]
        m.d.comb += [out.ready.eq(AnySeq(1)), done.valid.eq(AnySeq(1)),
                     Value.cast(done.payload).eq(AnySeq(len(Value.cast(done.payload))))]

    def _overflow(self, m, p, d, frag, t, q, cnt, inc):
        """The signal stage of queue ``q``: a full counter is refused and raises."""
        cfg, tmax, n = self.cfg, self.cfg.soc.token_max, QUEUE_NAMES[q]
        sig_v = internal(frag, f"sigv{t}_{n}")
        sig = data.View(entry_layout(cfg, q), internal(frag, f"sig{t}_{n}"))
        toks = [TOKEN_OF[q, f] for f in ("signal_prev", "signal_next") if (q, f) in TOKEN_OF]
        full = [getattr(sig, f) & (cnt[t, TOKEN_OF[q, f]] == tmax)
                for f in ("signal_prev", "signal_next") if (q, f) in TOKEN_OF]
        ovf = sig_v & Cat(*full).any()
        p.check(f"tokens.t{t}.{n}.overflow_raises_error", ~ovf | d.o_err_valid)
        p.check(f"tokens.t{t}.{n}.overflow_signals_nothing",
                ~ovf | ~Cat(*[inc[t, k] for k in toks]).any())
        return ovf


def small_token_config():
    """The tiny preset with 2-bit token counters (full after 3 signals)."""
    tiny = PRESETS["tiny"]
    return dataclasses.replace(tiny, soc=dataclasses.replace(tiny.soc, token_bits=2))


PROOFS = [
    Proof("cmdproc_tokens", "rtl/soc/cmdproc_queues.py::TileDispatch",
          "command processor token counters (tiny preset)", TokenHarness, "prove", 2,
          why="k-induction closes at once: each property follows from the gating of the "
              "counter updates in the same cycle"),
    Proof("cmdproc_tokens_cover", "rtl/soc/cmdproc_queues.py::TileDispatch",
          "command processor: TOKEN_OVERFLOW is reachable",
          lambda: TokenHarness(small_token_config()), "cover", 14,
          why="with 2-bit counters a counter fills and overflows within the depth, so the "
              "overflow path the proof covers is live"),
]
