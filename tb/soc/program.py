"""Run one command-ring program on the chip top (``soc``) from a prepared HBM image.

Shared by the runtime's RTL backend (:mod:`tb.soc.runtime_rtl`) and the SoC bench
(:mod:`tb.soc.bench_soc`) and the host-port tests (:mod:`tb.soc.test_soc_host`); uses
:class:`tb.soc.tb.SocTB`'s registers and, for HBM, its backdoor (``via="backdoor"``, the
default: one word per cycle, no bus) or the host's AXI4 port (``via="axi"``:
``s_axi_host``, bursts over the mesh, with the TB's stalls).
"""
from __future__ import annotations

import time

import numpy as np

from models.isa import CMD_BYTES
from tb.soc.tb import SocTB

__all__ = ["load_image", "run_ring", "read_region", "VIAS"]


def _up(x: int, w: int) -> int:
    return -(-x // w) * w


VIAS = ("backdoor", "axi")


def _check_via(via: str) -> None:
    if via not in VIAS:
        raise ValueError(f"via must be one of {VIAS}, got {via!r}")


async def load_image(tb: SocTB, image: np.ndarray, ring_addr: int, entries: int, *,
                     via: str = "backdoor") -> None:
    """Write ``image`` from address 0 up to the end of the ring (word aligned) through
    the backdoor or the host's AXI4 port (``via``)."""
    _check_via(via)
    end = _up(ring_addr + entries * CMD_BYTES, tb.W)
    data = np.asarray(image, np.uint8)[:end].tobytes()
    if via == "axi":
        await tb.host_write(0, data)
    else:
        await tb.bd_write(0, data)


async def run_ring(tb: SocTB, ring_addr: int, entries: int, *, cycles: int,
                   what: str) -> dict:
    """Program RING_BASE / RING_SIZE / INTR_ENABLE / CONTROL, ring RING_TAIL = entries - 1,
    await the IRQ (bounded by ``cycles``) and return ``cycles`` (doorbell write issued ..
    rising ``o_irq``), ``start`` (cycle of the doorbell write), ``wait_wall_s``
    (wall-clock seconds of the wait for the IRQ, in which no Python runs: the
    simulator's own speed) and the status registers."""
    await tb.wr("RING_BASE_LO", ring_addr)
    await tb.wr("RING_BASE_HI", 0)
    await tb.wr("RING_SIZE", entries)
    await tb.wr("INTR_ENABLE", 0b111)
    await tb.wr("CONTROL", 1)
    t0 = tb.now()
    await tb.wr("RING_TAIL", entries - 1)
    w0 = time.monotonic()
    await tb.wait_irq(cycles=cycles, what=what)
    out = {"cycles": tb.now() - t0, "start": t0, "wait_wall_s": time.monotonic() - w0}
    for name in ("INTR_STATUS", "ERROR_CODE", "ERROR_ADDR", "IRQ_VALUE", "COMPLETIONS",
                 "RING_HEAD"):
        out[name] = await tb.rd(name)
    return out


async def read_region(tb: SocTB, addr: int, n: int, *, via: str = "backdoor") -> np.ndarray:
    """HBM bytes ``[addr, addr + n)`` through the backdoor (reads whole words) or the
    host's AXI4 port (``via``; any alignment, every burst must be OKAY)."""
    _check_via(via)
    if via == "axi":
        return np.frombuffer(await tb.host_read(addr, n), np.uint8).copy()
    lo = addr - addr % tb.W
    data = await tb.bd_read(lo, _up(addr + n, tb.W) - lo)
    return np.frombuffer(data, np.uint8)[addr - lo:addr - lo + n].copy()
