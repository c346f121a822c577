"""Pipeline bookkeeping: named cut points and stage-aligned values (vector unit, FP units).

Two small helpers keep the deep pipelines of the vector unit readable:

* :func:`cut` registers a dict of values when its point is enabled (the units' ``stages``
  parameters select points, as ``rtl.fp.fp32_add.FP32Adder`` does);
* :class:`Timeline` tracks the pipeline stage each value is valid in and inserts the
  delay registers that bring operands of different stages together (``at``, ``align``),
  sharing one delay chain per value among all its consumers.

Every register advances every cycle (no enable): the vector unit's datapath never stalls.

The registers of one cut, one delay chain or one :class:`Timeline` are written as a few
64-bit registers (:class:`RegisterBank`), each value a named signal driven from its bits:
the logic is the same, but the Verilog has one clocked process per word instead of one
per value. Icarus runs every clocked process at every clock edge whether its value
changes or not; the pipelined vector unit had ~620 per lane and made the idle ``tiny``
chip top 3x slower on Icarus (20,000 cycles: 17 s before pipelining, 51 s after, 29 s
with the banks). Words, not one register per bank: a bank of thousands of bits made
Verilator (-O0) 3x slower on the vector unit and Icarus slower on active data (the
vector unit's random tests: Verilator 3.4 s unbanked, 9.9 s one register per bank, 3.9 s
in 64-bit words; Icarus 22.6, 12.8, 6.2 s).
"""
from __future__ import annotations

from amaranth import Cat, Module, Signal, Value

__all__ = ["RegisterBank", "cut", "cut_at", "delay", "Timeline"]


class RegisterBank:
    """Registers declared one at a time and emitted as a few 64-bit words.

    ``add(v, name)`` returns a signal ``name`` that equals ``v`` one cycle later (reset
    to 0 like an ordinary ``sync`` signal); :meth:`close` writes the bank: registers
    ``<prefix>_q`` of at most :attr:`WORD_BITS` bits each (a wider value alone), holding
    the values in the order added, and each named signal driven from its slice.
    Call ``close`` once, after the last ``add`` and before the module is returned (a
    bank never closed leaves its signals undriven: 0, caught by any test).
    """

    WORD_BITS = 64

    def __init__(self, m: Module, prefix: str):
        self._m = m
        self._prefix = prefix
        self._items: list[tuple[Signal, Value]] = []
        self._closed = False

    def add(self, v, name: str) -> Signal:
        if self._closed:
            raise RuntimeError(f"register bank {self._prefix} is closed; add before close()")
        v = Value.cast(v)
        r = Signal(v.shape(), name=name)
        self._items.append((r, v))
        return r

    def close(self) -> None:
        if self._closed:
            raise RuntimeError(f"register bank {self._prefix} closed twice")
        self._closed = True
        for items in self._words():
            q = Signal(sum(len(r) for r, _ in items), name=f"{self._prefix}_q")
            self._m.d.sync += q.eq(Cat(*(v for _, v in items)))
            lo = 0
            for r, _ in items:
                self._m.d.comb += r.eq(q[lo:lo + len(r)])
                lo += len(r)

    def _words(self) -> list[list]:
        """The items in groups of at most :data:`WORD_BITS` bits (a wider item alone)."""
        groups, bits = [], 0
        for r, v in self._items:
            if not groups or bits + len(r) > self.WORD_BITS:
                groups.append([])
                bits = 0
            groups[-1].append((r, v))
            bits += len(r)
        return groups


def cut(m: Module, enabled: bool, point: str, sigs: dict) -> dict:
    """``sigs`` (name -> value), each registered once when ``enabled`` (one bank named
    ``point``, signals ``<point>_<name>``), else as is."""
    if not enabled:
        return sigs
    bank = RegisterBank(m, point)
    out = {name: bank.add(v, f"{point}_{name}") for name, v in sigs.items()}
    bank.close()
    return out


class Timeline:
    """Values tagged with the pipeline stage (cycle after the inputs) they are valid in.

    ``t.put(v, s)`` tags ``v`` as valid in stage ``s``; ``t.at(v, s)`` returns ``v``
    delayed to stage ``s >= stage(v)`` (a chain of registers shared by every caller);
    ``t.reg(v)`` is ``v`` one register later; ``t.const(v)`` tags a value that holds
    still while rows are in flight (a command field, a constant): valid in every stage,
    never delayed. Stage 0 is the inputs' cycle.

    Call ``at`` / ``align`` / ``reg`` outside ``If`` / ``Switch`` blocks: the delay
    registers they add must load every cycle. The registers form one
    :class:`RegisterBank`: call :meth:`close` once, at the end of ``elaborate``.
    """

    def __init__(self, m: Module, prefix: str):
        self._prefix = prefix
        self._bank = RegisterBank(m, prefix)
        self._stage: dict[int, int] = {}
        self._chains: dict[int, list] = {}
        self._keep: list = []          # keeps tagged values alive (ids stay unique)

    def put(self, v, stage: int):
        v = Value.cast(v)
        self._stage[id(v)] = stage
        self._keep.append(v)
        return v

    def const(self, v):
        return self.put(v, None)

    def stage(self, v) -> int | None:
        try:
            return self._stage[id(v)]
        except KeyError:
            raise ValueError(f"{v!r} has no stage in timeline {self._prefix}") from None

    def at(self, v, stage: int):
        s0 = self.stage(v)
        if s0 is None:
            return v
        if stage < s0:
            raise ValueError(f"{v!r} is valid in stage {s0}, wanted earlier stage {stage}")
        chain = self._chains.setdefault(id(v), [v])
        while len(chain) <= stage - s0:
            r = self._bank.add(chain[-1], f"{self._prefix}_d{len(self._chains)}_{len(chain)}")
            chain.append(r)
            self.put(r, s0 + len(chain) - 1)
        return chain[stage - s0]

    def reg(self, v, name: str | None = None):
        """``v`` through one register (a new value, one stage later)."""
        v = Value.cast(v)
        r = self._bank.add(v, name or f"{self._prefix}_r{len(self._keep)}")
        return self.put(r, self.latest(v) + 1)

    def close(self) -> None:
        """Write the timeline's registers (:meth:`RegisterBank.close`)."""
        self._bank.close()

    def latest(self, *vs) -> int:
        return max((s for s in map(self.stage, vs) if s is not None), default=0)

    def align(self, *vs) -> list:
        """``vs`` delayed to the latest stage among them."""
        s = self.latest(*vs)
        return [self.at(v, s) for v in vs]


def delay(m: Module, v, n: int, name: str):
    """``v`` through ``n`` registers (``n = 0``: ``v`` itself; one bank ``name``)."""
    v = Value.cast(v)
    bank = RegisterBank(m, name)
    for k in range(n):
        v = bank.add(v, f"{name}_{k + 1}")
    bank.close()
    return v


def cut_at(m: Module, cuts, point: str, sigs: dict) -> dict:
    """:func:`cut` for a unit whose ``stages`` select the points in ``cuts``: registered
    when ``point`` is among them. Expressions are registered as their bits (unsigned),
    signals with their own shape."""
    sigs = {k: v if isinstance(v, Signal) else Value.cast(v).as_unsigned()
            for k, v in sigs.items()}
    return cut(m, point in cuts, point, sigs)
