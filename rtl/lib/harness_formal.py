"""Shared pieces of the formal harnesses (``rtl/**/*_formal.py``, docs/formal.md).

A harness is an :class:`Elaboratable` that instantiates one real block, drives its
inputs from free variables (``AnySeq``), constrains them with ``Assume`` and checks the
block with named ``Assert``\\ s. :class:`Props` records every property's name and source
line, so ``scripts/formal.py`` can map the failing ``$check`` cell that SymbiYosys
reports (by source location) back to the property's name. :class:`Proof` describes one
SymbiYosys run (engine, mode, depth) of a harness.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from amaranth import Elaboratable, Module, Mux, ResetSignal, Signal, Value
from amaranth.asserts import AnyConst, AnySeq
from amaranth.hdl import Assert, Assume, Cover, Fragment

__all__ = ["AnyConst", "AnySeq", "Props", "FormalHarness", "Proof", "past", "internal",
           "fifo_invariant",
           "stable_stream_out", "legal_stream_in"]


class Props:
    """Named properties of one harness, added to ``m.d.comb`` (checked every step).

    Parameters
    ----------
    m : Module
        The harness module.
    """

    def __init__(self, m: Module):
        self.m = m
        self.items: list[dict] = []

    def _add(self, make, kind: str, name: str, test) -> None:
        if any(p["name"] == name for p in self.items):
            raise ValueError(f"property {name!r} declared twice")
        stmt = make(Value.cast(test), name, src_loc_at=2)
        file, line = stmt.src_loc
        # the `src` of the $check cell is what SymbiYosys names in a counterexample:
        # the property's own name (helpers add several properties from one line)
        stmt.src_loc = (name, line)
        self.m.d.comb += stmt
        self.items.append({"name": name, "kind": kind, "file": file, "line": line})

    def check(self, name: str, test) -> None:
        """``Assert(test)`` called ``name``."""
        self._add(Assert, "assert", name, test)

    def assume(self, name: str, test) -> None:
        """``Assume(test)`` called ``name`` (a rule of the block's environment)."""
        self._add(Assume, "assume", name, test)

    def cover(self, name: str, test) -> None:
        """``Cover(test)`` called ``name`` (reachability; not run in prove/bmc mode)."""
        self._add(Cover, "cover", name, test)

    def asserts(self) -> list[dict]:
        """The assertions (the records of ``build/reports/formal.json``)."""
        return [p for p in self.items if p["kind"] == "assert"]

    def covers(self) -> list[dict]:
        """The cover statements (the records of a ``cover`` run)."""
        return [p for p in self.items if p["kind"] == "cover"]


class FormalHarness(Elaboratable):
    """Base class: the sync domain never resets (registers start at their init values).

    A subclass implements :meth:`build` (the harness body) and keeps the ``Props`` of
    its last elaboration in ``self.props``.
    """

    def __init__(self):
        self.props: Props | None = None

    def elaborate(self, platform):
        m = Module()
        self.props = Props(m)
        self.props.assume("env.no_reset", ~ResetSignal())
        self.build(m, self.props)
        return m

    def build(self, m: Module, p: Props) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class Proof:
    """One SymbiYosys run of a harness.

    Attributes
    ----------
    name : str
        ``--only`` name and folder under ``build/formal/``.
    block : str
        The RTL it checks (``rtl/lib/stream.py::Queue``).
    group : str
        Property group of the results table.
    make : callable
        Returns a fresh harness.
    mode : str
        ``prove`` (k-induction, unbounded when it closes), ``bmc`` (bounded) or
        ``cover`` (every ``Cover`` reached within ``depth``: the bounded runs are not
        vacuous).
    depth : int
        Induction length (prove) or number of steps (bmc).
    engine : str
        The ``[engines]`` line.
    why : str
        Why this depth (docs/formal.md).
    map_memory : bool
        Turn memories into registers before solving (fast for small FIFOs; keep False
        for a large backing store, which the solver then sees as an array).
    """

    name: str
    block: str
    group: str
    make: Callable[[], FormalHarness]
    mode: str
    depth: int
    engine: str = "smtbmc yices"
    why: str = ""
    map_memory: bool = True


def past(m: Module, value, name: str, init=0) -> Signal:
    """``value`` of the previous cycle (``init`` in the first)."""
    value = Value.cast(value)
    reg = Signal(value.shape(), name=name, init=init)
    m.d.sync += reg.eq(value)
    return reg


def internal(fragment: Fragment, name: str, path: tuple = ()) -> Signal:
    """The signal called ``name`` that a block drives, found in its elaborated fragment.

    Parameters
    ----------
    fragment : Fragment
        ``Fragment.get(block, None)`` (add that fragment, not the block, to the harness).
    name : str
        Signal name (unique within the searched fragment).
    path : tuple of str
        Submodule names from ``fragment`` down to the one that drives the signal.
    """
    frag = fragment
    for step in path:
        frag = next(f for f, n, *_ in frag.subfragments if n == step)
    found = {id(s): s for stmts in frag.statements.values() for st in stmts
             for s in st._lhs_signals() if s.name == name}
    if len(found) != 1:
        raise LookupError(f"{len(found)} signals called {name!r} under {path}")
    return next(iter(found.values()))


def fifo_invariant(p: Props, fragment: Fragment, path: tuple, depth: int, tag: str) -> None:
    """Assert a ``Queue``'s SyncFIFO invariant: the write pointer is ``level`` entries
    ahead of the read pointer, ``level <= depth``. k-induction needs it: an induction
    trace may otherwise start with both pointers on one slot of a non-full FIFO.

    Parameters
    ----------
    path : tuple of str
        Submodule names from ``fragment`` to the ``Queue`` (its ``fifo`` is below it).
    """
    path = (*path, "fifo")
    produce = internal(fragment, "produce", path)
    consume = internal(fragment, "consume", path)
    level = internal(fragment, "level", path)
    ahead = consume + level
    p.check(f"{tag}.fifo_pointers_match_level",
            (level <= depth) & (produce == Mux(ahead >= depth, ahead - depth, ahead)))


def legal_stream_in(m: Module, p: Props, s, tag: str) -> None:
    """Assume ``s`` (a stream the harness drives into the block) follows the stream
    rules: ``valid`` held until ``ready``, payload stable meanwhile."""
    held = past(m, s.valid & ~s.ready, f"{tag}_held")
    pay = past(m, s.payload, f"{tag}_pay")
    p.assume(f"env.{tag}.valid_held", ~held | s.valid)
    p.assume(f"env.{tag}.payload_stable", ~held | (Value.cast(s.payload) == Value.cast(pay)))


def stable_stream_out(m: Module, p: Props, valid, ready, payload, tag: str) -> None:
    """Assert that a stream (or AXI channel) the block drives keeps ``valid`` and its
    payload until accepted."""
    held = past(m, valid & ~ready, f"{tag}_held")
    pay = past(m, payload, f"{tag}_pay")
    p.check(f"{tag}.valid_held_until_ready", ~held | valid)
    p.check(f"{tag}.payload_stable", ~held | (Value.cast(payload) == Value.cast(pay)))
