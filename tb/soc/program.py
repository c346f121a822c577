"""Run one command-ring program on the chip top (``soc``) from a prepared HBM image.

Shared by the runtime's RTL backend (:mod:`tb.soc.runtime_rtl`) and the SoC bench
(:mod:`tb.soc.bench_soc`); uses :class:`tb.soc.tb.SocTB`'s backdoor and registers.
"""
from __future__ import annotations

import numpy as np

from models.isa import CMD_BYTES
from tb.soc.tb import SocTB

__all__ = ["load_image", "run_ring", "read_region"]


def _up(x: int, w: int) -> int:
    return -(-x // w) * w


async def load_image(tb: SocTB, image: np.ndarray, ring_addr: int, entries: int) -> None:
    """Backdoor-write ``image`` from address 0 up to the end of the ring (word aligned)."""
    end = _up(ring_addr + entries * CMD_BYTES, tb.W)
    await tb.bd_write(0, np.asarray(image, np.uint8)[:end].tobytes())


async def run_ring(tb: SocTB, ring_addr: int, entries: int, *, cycles: int,
                   what: str) -> dict:
    """Program RING_BASE / RING_SIZE / INTR_ENABLE / CONTROL, ring RING_TAIL = entries - 1,
    await the IRQ (bounded by ``cycles``) and return ``cycles`` (doorbell write issued ..
    rising ``o_irq``) and the status registers."""
    await tb.wr("RING_BASE_LO", ring_addr)
    await tb.wr("RING_BASE_HI", 0)
    await tb.wr("RING_SIZE", entries)
    await tb.wr("INTR_ENABLE", 0b111)
    await tb.wr("CONTROL", 1)
    t0 = tb.now()
    await tb.wr("RING_TAIL", entries - 1)
    await tb.wait_irq(cycles=cycles, what=what)
    out = {"cycles": tb.now() - t0}
    for name in ("INTR_STATUS", "ERROR_CODE", "ERROR_ADDR", "IRQ_VALUE", "COMPLETIONS",
                 "RING_HEAD"):
        out[name] = await tb.rd(name)
    return out


async def read_region(tb: SocTB, addr: int, n: int) -> np.ndarray:
    """HBM bytes ``[addr, addr + n)`` through the backdoor (reads whole words)."""
    lo = addr - addr % tb.W
    data = await tb.bd_read(lo, _up(addr + n, tb.W) - lo)
    return np.frombuffer(data, np.uint8)[addr - lo:addr - lo + n].copy()
