"""Golden model of the DMA engine (rtl/dma/engine.py): byte-accurate copies.

The model says, for a descriptor and the memories before it,

* which completion code the engine returns (:func:`check_descriptor`, same order of
  checks as the RTL: BAD_LENGTH, MISALIGNED, WINDOW);
* exactly which bytes change (:func:`apply`), so a test can assert that everything
  else stayed untouched, byte for byte;
* the AXI bursts it issues (:func:`plan_bursts`: never across ``burst_chunk``, hence
  never across 4 KiB, with the WSTRB of every beat);
* when the completions come out (:func:`stream_cycles`: analytic timing of a stream of
  back-to-back loads through the HBM stub, which the bench prints next to the RTL).

Reads the same :class:`models.config.DmaConfig` / ``HbmConfig`` as the RTL. numpy only.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from models.config import DmaConfig, HbmConfig

__all__ = ["OK", "DECERR", "SLVERR", "WINDOW", "BAD_LENGTH", "MISALIGNED", "ERROR_NAMES",
           "LOAD", "STORE", "Descriptor", "Burst", "check_descriptor", "rows", "plan_bursts",
           "apply", "burst_chunk", "stream_cycles", "DESCS_IN_FLIGHT"]

# mirrors rtl.dma.engine.DESCS_IN_FLIGHT: descriptors accepted and not yet completed
DESCS_IN_FLIGHT = 8

OK, DECERR, SLVERR, WINDOW, BAD_LENGTH, MISALIGNED = range(6)
ERROR_NAMES = {OK: "OK", DECERR: "DECERR", SLVERR: "SLVERR", WINDOW: "WINDOW",
               BAD_LENGTH: "BAD_LENGTH", MISALIGNED: "MISALIGNED"}
LOAD, STORE = 0, 1


@dataclass
class Descriptor:
    """Mirror of ``rtl.dma.engine.desc_layout`` (unsigned fields)."""

    dir: int = LOAD
    src: int = 0
    dst: int = 0
    row_bytes: int = 0
    rows: int = 1
    planes: int = 1
    src_ystride: int = 0
    dst_ystride: int = 0
    src_zstride: int = 0
    dst_zstride: int = 0
    tag: int = 0

    def to_payload(self) -> dict:
        return {k: getattr(self, k) for k in ("dir", "tag", "src", "dst", "row_bytes", "rows",
                                               "planes", "src_ystride", "dst_ystride",
                                               "src_zstride", "dst_zstride")}

    @property
    def total(self) -> int:
        return self.row_bytes * self.rows * self.planes

    @property
    def axi(self) -> tuple[int, int, int]:
        """(base, ystride, zstride) on the AXI side."""
        if self.dir == STORE:
            return self.dst, self.dst_ystride, self.dst_zstride
        return self.src, self.src_ystride, self.src_zstride

    @property
    def sram(self) -> tuple[int, int, int]:
        if self.dir == STORE:
            return self.src, self.src_ystride, self.src_zstride
        return self.dst, self.dst_ystride, self.dst_zstride


@dataclass
class Burst:
    addr: int
    beats: int
    strobes: list[int] = field(default_factory=list)   # one WSTRB per beat


def burst_chunk(cfg: DmaConfig, data_bytes: int) -> int:
    return min(4096, cfg.max_burst_beats * data_bytes)


def _extent(base, ys, zs, d: Descriptor) -> int:
    return base + (d.planes - 1) * zs + (d.rows - 1) * ys + d.row_bytes


def check_descriptor(cfg: DmaConfig, data_bytes: int, d: Descriptor, win_base: int,
                     win_limit: int) -> int:
    """Completion code of the up-front checks (OK if the copy may start)."""
    if d.row_bytes == 0 or d.rows == 0 or d.planes == 0 or d.total > cfg.max_bytes:
        return BAD_LENGTH
    W = data_bytes
    if (d.src - d.dst) % W or (d.rows > 1 and (d.src_ystride - d.dst_ystride) % W) or \
            (d.planes > 1 and (d.src_zstride - d.dst_zstride) % W):
        return MISALIGNED
    ab, ays, azs = d.axi
    sb, sys_, szs = d.sram
    if ab < win_base or _extent(ab, ays, azs, d) > win_limit or \
            _extent(sb, sys_, szs, d) > cfg.sram_bytes:
        return WINDOW
    return OK


def rows(d: Descriptor):
    """(src_row_addr, dst_row_addr) of every row in copy order (z-major)."""
    for z in range(d.planes):
        for y in range(d.rows):
            yield (d.src + z * d.src_zstride + y * d.src_ystride,
                   d.dst + z * d.dst_zstride + y * d.dst_ystride)


def plan_bursts(cfg: DmaConfig, data_bytes: int, d: Descriptor) -> list[Burst]:
    """The AXI bursts of an accepted descriptor, in issue order, with per-beat strobes."""
    W, chunk = data_bytes, burst_chunk(cfg, data_bytes)
    out = []
    ab, ays, azs = d.axi
    for z in range(d.planes):
        for y in range(d.rows):
            a, end = ab + z * azs + y * ays, ab + z * azs + y * ays + d.row_bytes
            while a < end:
                n = min(end - a, chunk - a % chunk)
                first, last = a // W, (a + n - 1) // W
                strobes = []
                for w in range(first, last + 1):
                    lo, hi = max(a, w * W), min(a + n, (w + 1) * W)
                    strobes.append(sum(1 << (i - w * W) for i in range(lo, hi)))
                out.append(Burst(a, last - first + 1, strobes))
                a += n
    return out


def apply(d: Descriptor, hbm: np.ndarray, sram: np.ndarray) -> None:
    """Perform an accepted copy in place on byte arrays (row order: later rows win)."""
    src_mem, dst_mem = (hbm, sram) if d.dir == LOAD else (sram, hbm)
    n = d.row_bytes
    for s, t in rows(d):
        dst_mem[t:t + n] = src_mem[s:s + n]


def stream_cycles(cfg: DmaConfig, hbm: HbmConfig, descs: list[Descriptor], *,
                  latency: int | None = None, in_flight: int = DESCS_IN_FLIGHT) -> list[int]:
    """Analytic completion cycle of each descriptor of a back-to-back stream of loads.

    Cycle 0 is the one in which the first descriptor is accepted; all are queued then
    and the completion sink is always ready. The engine's front end takes a queued
    descriptor (1 cycle), checks it (1 cycle; waits while ``in_flight`` descriptors are
    incomplete), then issues one burst address per cycle (waiting while
    ``max_outstanding`` bursts are in flight); the next descriptor is taken in the
    cycle of the last address. An address reaches the stub one cycle after it is
    issued, its first beat ``latency`` cycles later, and the port moves one beat per
    cycle (``channels * bytes_per_cycle / data_bytes`` if that is less); a descriptor
    completes 2 cycles after its last beat. Same-direction descriptors only (a change
    of direction drains first, not modelled). ``stream_cycles(...)[-1] + 1`` is the
    bench's "first accepted to last completion" figure; for one descriptor it is the
    isolated latency ``latency + beats + 6``.
    """
    lat = hbm.read_latency if latency is None else latency
    rate = min(1.0, hbm.channels * hbm.bytes_per_cycle / hbm.data_bytes)
    maxo = min(cfg.max_outstanding, hbm.max_outstanding * hbm.channels)
    W = hbm.data_bytes
    fetch = 1.0                 # cycle the front end takes the next descriptor
    data_free = 0.0             # first cycle the read data port is free
    issue = -1.0                # cycle of the latest burst address issue
    burst_end: list[float] = []
    done: list[int] = []
    for j, d in enumerate(descs):
        accept = fetch + 1
        if j >= in_flight:
            accept = max(accept, done[j - in_flight] + 1)
        t = accept + 1                                 # first cycle that may issue
        bursts = [b.beats for b in plan_bursts(cfg, W, d)]
        for beats in bursts:
            t = max(t, issue + 1)
            if len(burst_end) >= maxo:
                t = max(t, burst_end[-maxo] + 1)
            issue = t
            start = max(t + 1 + lat, data_free)
            data_free = start + beats / rate
            burst_end.append(data_free - 1)
        fetch = issue
        done.append(int(math.ceil(burst_end[-1])) + 2)
    return done
