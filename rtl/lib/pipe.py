"""Pipeline bookkeeping: named cut points and stage-aligned values (vector unit, FP units).

Two small helpers keep the deep pipelines of the vector unit readable:

* :func:`cut` registers a dict of values when its point is enabled (the units' ``stages``
  parameters select points, as ``rtl.fp.fp32_add.FP32Adder`` does);
* :class:`Timeline` tracks the pipeline stage each value is valid in and inserts the
  delay registers that bring operands of different stages together (``at``, ``align``),
  sharing one delay chain per value among all its consumers.

Every register advances every cycle (no enable): the vector unit's datapath never stalls.
"""
from __future__ import annotations

from amaranth import Module, Signal, Value

__all__ = ["cut", "cut_at", "delay", "Timeline"]


def cut(m: Module, enabled: bool, point: str, sigs: dict) -> dict:
    """``sigs`` (name -> value), each registered once when ``enabled``, else as is."""
    if not enabled:
        return sigs
    out = {}
    for name, v in sigs.items():
        v = Value.cast(v)
        r = Signal(v.shape(), name=f"{point}_{name}")
        m.d.sync += r.eq(v)
        out[name] = r
    return out


class Timeline:
    """Values tagged with the pipeline stage (cycle after the inputs) they are valid in.

    ``t.put(v, s)`` tags ``v`` as valid in stage ``s``; ``t.at(v, s)`` returns ``v``
    delayed to stage ``s >= stage(v)`` (a chain of registers shared by every caller);
    ``t.reg(v)`` is ``v`` one register later; ``t.const(v)`` tags a value that holds
    still while rows are in flight (a command field, a constant): valid in every stage,
    never delayed. Stage 0 is the inputs' cycle.

    Call ``at`` / ``align`` / ``reg`` outside ``If`` / ``Switch`` blocks: the delay
    registers they add must load every cycle.
    """

    def __init__(self, m: Module, prefix: str):
        self._m = m
        self._prefix = prefix
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
            r = Signal(v.shape(), name=f"{self._prefix}_d{len(self._chains)}_{len(chain)}")
            self._m.d.sync += r.eq(chain[-1])
            chain.append(r)
            self.put(r, s0 + len(chain) - 1)
        return chain[stage - s0]

    def reg(self, v, name: str | None = None):
        """``v`` through one register (a new value, one stage later)."""
        v = Value.cast(v)
        r = Signal(v.shape(), name=name or f"{self._prefix}_r{len(self._keep)}")
        self._m.d.sync += r.eq(v)
        return self.put(r, self.latest(v) + 1)

    def latest(self, *vs) -> int:
        return max((s for s in map(self.stage, vs) if s is not None), default=0)

    def align(self, *vs) -> list:
        """``vs`` delayed to the latest stage among them."""
        s = self.latest(*vs)
        return [self.at(v, s) for v in vs]


def delay(m: Module, v, n: int, name: str):
    """``v`` through ``n`` registers (``n = 0``: ``v`` itself)."""
    v = Value.cast(v)
    for k in range(n):
        r = Signal(v.shape(), name=f"{name}_{k + 1}")
        m.d.sync += r.eq(v)
        v = r
    return v


def cut_at(m: Module, cuts, point: str, sigs: dict) -> dict:
    """:func:`cut` for a unit whose ``stages`` select the points in ``cuts``: registered
    when ``point`` is among them. Expressions are registered as their bits (unsigned),
    signals with their own shape."""
    sigs = {k: v if isinstance(v, Signal) else Value.cast(v).as_unsigned()
            for k, v in sigs.items()}
    return cut(m, point in cuts, point, sigs)
