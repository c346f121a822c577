"""Valid/ready stream bus-functional models, ticked once per cycle by :class:`ClockedTB`.

One coroutine (the TB's cycle loop) drives every agent: after the falling edge each
agent drives its outputs, then in ``ReadOnly`` each samples the settled handshake, so a
transfer is recorded exactly when ``valid & ready`` holds at the rising edge. This gives
identical behaviour on Icarus and Verilator and costs two awaits per cycle for the whole
testbench instead of two per agent.

Pacers decide, cycle by cycle, whether a source may offer data (idle insertion) or a
sink is ready (backpressure). Sources obey the stream rule that ``valid`` stays high and
the payload stays stable until accepted; sinks check the DUT obeys it too.
"""
from __future__ import annotations

import random
from collections import deque
from typing import Callable

from tb.common.packing import packer

__all__ = ["Pacer", "StreamSource", "StreamSink", "signal_int"]


def signal_int(handle) -> int:
    """Unsigned integer value of a signal (X/Z raise, which is what a check wants)."""
    v = handle.value
    return v.to_unsigned() if hasattr(v, "to_unsigned") else int(v)


class Pacer:
    """Says yes or no each cycle: ``random(p)`` is yes with probability ``1 - p``.

    Parameters
    ----------
    stall : float
        Probability of a "no" (an idle cycle for a source, backpressure for a sink).
    burst : int
        Once a "no" starts, it lasts a random 1..burst cycles (bursty stalls).
    rng : random.Random
        The seeded generator of the test.
    """

    def __init__(self, stall: float = 0.0, *, burst: int = 1, rng: random.Random | None = None):
        if not 0.0 <= stall < 1.0:
            raise ValueError(f"stall probability must be in [0, 1), got {stall}")
        if burst < 1:
            raise ValueError(f"burst must be >= 1, got {burst}")
        self.stall, self.burst = stall, burst
        self._rng = rng or random.Random(0)
        self._hold = 0

    def __call__(self) -> bool:
        if self.stall == 0.0:
            return True
        if self._hold:
            self._hold -= 1
            return False
        if self._rng.random() < self.stall:
            self._hold = self._rng.randint(1, self.burst) - 1
            return False
        return True

    def __repr__(self):
        return f"Pacer(stall={self.stall}, burst={self.burst})"


class StreamSource:
    """Drives ``<name>__valid`` / ``<name>__payload``; reads ``<name>__ready``.

    Items are payload values (see :mod:`tb.common.packing`) queued with :meth:`send`.
    ``fire_cycles`` records the cycle of every transfer.
    """

    def __init__(self, dut, name: str, layout, *, pacer: Pacer | None = None):
        self.name, self.layout = name, layout
        self._pack = packer(layout)[0]
        self._valid = getattr(dut, f"{name}__valid")
        self._payload = getattr(dut, f"{name}__payload")
        self._ready = getattr(dut, f"{name}__ready")
        self.pacer = pacer or Pacer()
        self.queue: deque = deque()
        self._feed = None
        self._offer = None
        self.sent = 0
        self.first_fire = None
        self.last_fire = None
        self._valid.value = 0

    def send(self, item) -> None:
        self.queue.append(item)

    def feed(self, items) -> None:
        """Take items lazily from an iterator once the queue is empty (long runs)."""
        self._feed = iter(items)

    def clear(self) -> None:
        """Forget queued and offered items (e.g. across a DUT reset)."""
        self.queue.clear()
        self._feed = None
        self._offer = None

    @property
    def idle(self) -> bool:
        return self._offer is None and not self.queue and self._feed is None

    def drive(self, cycle: int) -> None:
        if not self.queue and self._feed is not None:
            nxt = next(self._feed, None)
            if nxt is None:
                self._feed = None
            else:
                self.queue.append(nxt)
        if self._offer is None and self.queue and self.pacer():
            self._offer = self.queue.popleft()
            self._payload.value = self._pack(self._offer)
            self._valid.value = 1
        elif self._offer is None:
            self._valid.value = 0

    def sample(self, cycle: int) -> None:
        if self._offer is not None and signal_int(self._ready):
            self._offer = None
            self.sent += 1
            if self.first_fire is None:
                self.first_fire = cycle
            self.last_fire = cycle


class StreamSink:
    """Drives ``<name>__ready`` from its pacer; captures every transfer.

    Each captured payload is passed to ``on_item(item, cycle)``. The sink also checks
    the DUT side of the protocol: a valid that is not accepted must stay valid with the
    same payload on the next cycle (``protocol_errors`` counts violations).
    """

    def __init__(self, dut, name: str, layout, *, pacer: Pacer | None = None,
                 on_item: Callable | None = None):
        self.name, self.layout = name, layout
        self._unpack = packer(layout)[1]
        self._valid = getattr(dut, f"{name}__valid")
        self._payload = getattr(dut, f"{name}__payload")
        self._ready = getattr(dut, f"{name}__ready")
        self.pacer = pacer or Pacer()
        self.on_item = on_item
        self.received = 0
        self.last_fire = None
        self.protocol_errors: list[str] = []
        self._ready_now = False
        self._pending = None        # payload bits of a valid that was not accepted
        self._ready.value = 0

    def drive(self, cycle: int) -> None:
        self._ready_now = self.pacer()
        self._ready.value = int(self._ready_now)

    def sample(self, cycle: int) -> None:
        valid = signal_int(self._valid)
        if self._pending is not None:
            if not valid:
                self.protocol_errors.append(f"cycle {cycle}: {self.name}.valid dropped before ready")
            elif signal_int(self._payload) != self._pending:
                self.protocol_errors.append(f"cycle {cycle}: {self.name}.payload changed while stalled")
        self._pending = None
        if not valid:
            return
        bits = signal_int(self._payload)
        if not self._ready_now:
            self._pending = bits
            return
        self.received += 1
        self.last_fire = cycle
        if self.on_item is not None:
            self.on_item(self._unpack(bits), cycle)
