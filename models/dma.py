"""Golden model of the DMA engine (rtl/dma/engine.py) and its descriptor format.

The descriptor, the completion codes and the copy direction are defined here once
(:data:`FIELD_BITS`, :class:`DmaError`, :class:`DmaDir`); ``rtl.formats`` derives the
Amaranth layouts, scripts/gen_headers.py the C header, and :data:`IMAGE` is the
descriptor's memory image (what a command processor fetches).

The model says, for a descriptor and the memories before it,

* which completion code the engine returns (:func:`check_descriptor`, same order of
  checks as the RTL: BAD_LENGTH, MISALIGNED, WINDOW);
* exactly which bytes change (:func:`apply`), so a test can assert that everything
  else stayed untouched, byte for byte;
* the AXI bursts it issues (:func:`plan_bursts`: never across :func:`burst_chunk`, hence
  never across 4 KiB, with the WSTRB of every beat);
* when the completions come out (:func:`stream_cycles`: analytic timing of a stream of
  back-to-back loads through the HBM stub, which the bench prints next to the RTL).

Reads the same :class:`models.config.DmaConfig` / ``HbmConfig`` as the RTL. numpy only.

Descriptor fields (all unsigned; LSB first in the RTL layout, in this order):

============ ==== ================================================================
field        bits meaning
============ ==== ================================================================
dir          1    :class:`DmaDir`: LOAD (AXI/HBM -> SRAM) or STORE (SRAM -> AXI/HBM)
tag          8    returned with the completion
src, dst     32   first byte of row 0 (AXI or SRAM byte address, according to ``dir``)
row_bytes    32   bytes per row
rows         16   rows per plane (1: a 1D copy)
planes       16   planes (1: a 1D or 2D copy)
src_ystride  32   byte distance of consecutive source rows (used when rows > 1)
dst_ystride  32   same, destination
src_zstride  32   byte distance of consecutive source planes (used when planes > 1)
dst_zstride  32   same, destination
index        1    1: gather / scatter: plane z's AXI side uses ``idx[z]`` in place of z
index_addr   32   AXI byte address of the index list (used when ``index = 1``)
============ ==== ================================================================

Row (z, y) is read at ``src + z*src_zstride + y*src_ystride`` and written at
``dst + z*dst_zstride + y*dst_ystride``; rows are copied z-major, y-minor.

Indexed descriptors (``index = 1``, issue 15: the MoE gathers and scatters). Plane z
uses ``idx[z]``, the little-endian uint32 at AXI address ``index_addr + 4 z``
(:func:`index_list`), in place of z on the AXI side only: a LOAD reads row (z, y) at
``src + idx[z]*src_zstride + y*src_ystride`` and writes it at SRAM
``dst + z*dst_zstride + y*dst_ystride``; a STORE reads SRAM
``src + z*src_zstride + y*src_ystride`` and writes ``dst + idx[z]*dst_zstride +
y*dst_ystride``. Indices may repeat (a STORE's later plane wins). Up-front checks, in
the same order: MISALIGNED also if ``index_addr % 4`` or the AXI-side zstride is not a
multiple of ``data_bytes``; WINDOW also if the index list ``[index_addr, index_addr +
4 planes)`` leaves the AXI window (the SRAM side is checked as for ``index = 0``; the
AXI rows are not checked up front). The AXI rows of plane z are checked when
``idx[z]`` is known (exact integers, no 32-bit wrap): if they leave the window the
copy stops before plane z (planes < z copied, the rest not) and completes with
WINDOW (:func:`apply`'s return value). The index list is read from the AXI memory
while the copy runs: a STORE whose destination overlaps its own index list is
undefined (the engine may read an index before or after the store of an earlier
plane).

Memory image (:data:`IMAGE`, :data:`IMAGE_BYTES` = 40 bytes = 10 little-endian 32-bit
words, 8-byte multiple; reserved bits are written 0 and ignored):

====== ============================================================
offset word contents (bit offset: field)
====== ============================================================
0x00   0: dir, 8: tag, 16: index
0x04   0: src
0x08   0: dst
0x0C   0: row_bytes
0x10   0: rows, 16: planes
0x14   0: src_ystride
0x18   0: dst_ystride
0x1C   0: src_zstride
0x20   0: dst_zstride
0x24   0: index_addr
====== ============================================================
"""
from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field, fields

import numpy as np

from models.axi import BOUNDARY_BYTES
from models.config import DmaConfig, HbmConfig
from models.memimage import MemoryImage, check_widths

__all__ = ["DmaError", "DmaDir", "FIELD_BITS", "DONE_BITS", "ERR_BITS", "IMAGE",
           "IMAGE_BYTES", "Descriptor", "PlannedBurst", "check_descriptor", "rows",
           "plan_bursts", "apply", "burst_chunk", "stream_cycles", "code_name",
           "index_list", "plane_in_window", "INDEX_BYTES", "index_lookahead",
           "index_reads"]


class DmaError(enum.IntEnum):
    """Completion codes (``o_done.payload.err``); the up-front checks run in the order
    BAD_LENGTH, MISALIGNED, WINDOW."""

    OK = 0
    DECERR = 1          # an AXI response was DECERR
    SLVERR = 2          # an AXI response was SLVERR (the HBM stub's poison included)
    WINDOW = 3          # AXI side outside [i_win_base, i_win_limit) or SRAM side outside SRAM
    BAD_LENGTH = 4      # row_bytes, rows or planes is 0, or the total exceeds max_bytes
    MISALIGNED = 5      # source and destination differ in byte lane (mod data_bytes)


class DmaDir(enum.IntEnum):
    """Copy direction (descriptor field ``dir``)."""

    LOAD = 0            # AXI (HBM) -> SRAM
    STORE = 1           # SRAM -> AXI (HBM)


#: Descriptor fields and widths, in RTL layout order (LSB first).
FIELD_BITS: dict[str, int] = {
    "dir": 1, "tag": 8, "src": 32, "dst": 32, "row_bytes": 32, "rows": 16, "planes": 16,
    "src_ystride": 32, "dst_ystride": 32, "src_zstride": 32, "dst_zstride": 32,
    "index": 1, "index_addr": 32,
}
#: Bytes of one entry of an index list (a little-endian uint32).
INDEX_BYTES = 4
#: Bits of a completion code (room for :class:`DmaError` to grow).
ERR_BITS = 4
#: Completion record: the descriptor's tag and its :class:`DmaError`.
DONE_BITS: dict[str, int] = {"tag": FIELD_BITS["tag"], "err": ERR_BITS}

IMAGE_BYTES = 40
IMAGE = MemoryImage("dma_desc", IMAGE_BYTES, [
    ("dir", 0x00, 0, 1), ("tag", 0x00, 8, 8),
    ("src", 0x04, 0, 32), ("dst", 0x08, 0, 32), ("row_bytes", 0x0C, 0, 32),
    ("rows", 0x10, 0, 16), ("planes", 0x10, 16, 16),
    ("src_ystride", 0x14, 0, 32), ("dst_ystride", 0x18, 0, 32),
    ("src_zstride", 0x1C, 0, 32), ("dst_zstride", 0x20, 0, 32),
    ("index", 0x00, 16, 1), ("index_addr", 0x24, 0, 32),
], FIELD_BITS)

assert max(DmaError) < 1 << ERR_BITS and max(DmaDir) < 1 << FIELD_BITS["dir"]


def code_name(code: int) -> str:
    """Name of a completion code (the number itself if it is not a :class:`DmaError`)."""
    return DmaError(code).name if code in DmaError._value2member_map_ else str(code)


@dataclass
class Descriptor:
    """One descriptor (fields: the module docstring and :data:`FIELD_BITS`).

    Positional order is the historical one (``tag``, ``index``, ``index_addr`` last:
    every field after ``dst_zstride`` is best passed by keyword); the layout order is
    :data:`FIELD_BITS`'. Construction checks that every field fits its width
    (``ValueError``); whether the engine accepts it is :func:`check_descriptor`.
    """

    dir: int = DmaDir.LOAD
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
    index: int = 0
    index_addr: int = 0

    def __post_init__(self):
        check_widths("Descriptor", self, FIELD_BITS)

    def to_payload(self) -> dict:
        """Field name -> int, for packing with the RTL layout (``tb.common.packing``)."""
        return {k: int(getattr(self, k)) for k in FIELD_BITS}

    def to_bytes(self) -> bytes:
        """The :data:`IMAGE_BYTES`-byte memory image (:data:`IMAGE`)."""
        return IMAGE.pack(self.to_payload())

    @classmethod
    def from_bytes(cls, data: bytes) -> "Descriptor":
        """Inverse of :meth:`to_bytes` (reserved bits ignored)."""
        return cls(**IMAGE.unpack(data))

    @property
    def total(self) -> int:
        return self.row_bytes * self.rows * self.planes

    @property
    def axi(self) -> tuple[int, int, int]:
        """(base, ystride, zstride) on the AXI side."""
        if self.dir == DmaDir.STORE:
            return self.dst, self.dst_ystride, self.dst_zstride
        return self.src, self.src_ystride, self.src_zstride

    @property
    def sram(self) -> tuple[int, int, int]:
        if self.dir == DmaDir.STORE:
            return self.src, self.src_ystride, self.src_zstride
        return self.dst, self.dst_ystride, self.dst_zstride


assert {f.name for f in fields(Descriptor)} == set(FIELD_BITS)


@dataclass
class PlannedBurst:
    """One AXI burst of :func:`plan_bursts` (``index``: a read of the index list, on the
    read channel whatever the direction; its strobes are the index's bytes)."""

    addr: int
    beats: int
    strobes: list[int] = field(default_factory=list)   # one WSTRB per beat
    index: bool = False


def index_lookahead(cfg: DmaConfig, data_bytes: int) -> int:
    """Indices an indexed descriptor reads ahead of the plane being copied: the indices
    of half as many beats as bursts may be outstanding (at least one beat)."""
    return max(1, cfg.max_outstanding // 2) * (data_bytes // INDEX_BYTES)


def index_reads(d: Descriptor, data_bytes: int) -> list[tuple[int, int]]:
    """The index reads of an indexed descriptor: ``(first, n)`` = one one-beat read of
    the beat holding ``idx[first]`` .. ``idx[first + n - 1]`` (each beat read once)."""
    out, z, per = [], 0, data_bytes // INDEX_BYTES
    while z < d.planes:
        word = (d.index_addr + INDEX_BYTES * z) % data_bytes // INDEX_BYTES
        n = min(per - word, d.planes - z)
        out.append((z, n))
        z += n
    return out


def burst_chunk(cfg: DmaConfig, data_bytes: int) -> int:
    """Bursts never cross a multiple of this many bytes: min(4 KiB, max_burst_beats * W)."""
    return min(BOUNDARY_BYTES, cfg.max_burst_beats * data_bytes)


def _extent(base, ys, zs, d: Descriptor) -> int:
    return base + (d.planes - 1) * zs + (d.rows - 1) * ys + d.row_bytes


def check_descriptor(cfg: DmaConfig, data_bytes: int, d: Descriptor, win_base: int,
                     win_limit: int) -> DmaError:
    """Completion code of the up-front checks (OK if the copy may start).

    For an indexed descriptor the AXI rows are not checked here but plane by plane
    (:func:`plane_in_window`); the index list and the SRAM side are.
    """
    if d.row_bytes == 0 or d.rows == 0 or d.planes == 0 or d.total > cfg.max_bytes:
        return DmaError.BAD_LENGTH
    W = data_bytes
    ab, ays, azs = d.axi
    if (d.src - d.dst) % W or (d.rows > 1 and (d.src_ystride - d.dst_ystride) % W) or \
            (d.planes > 1 and (d.src_zstride - d.dst_zstride) % W) or \
            (d.index and (d.index_addr % INDEX_BYTES or azs % W)):
        return DmaError.MISALIGNED
    sb, sys_, szs = d.sram
    if _extent(sb, sys_, szs, d) > cfg.sram_bytes:
        return DmaError.WINDOW
    if d.index:
        if d.index_addr < win_base or d.index_addr + INDEX_BYTES * d.planes > win_limit:
            return DmaError.WINDOW
    elif ab < win_base or _extent(ab, ays, azs, d) > win_limit:
        return DmaError.WINDOW
    return DmaError.OK


def index_list(d: Descriptor, axi: np.ndarray) -> list[int]:
    """``idx[z]`` for every plane: the little-endian uint32 at ``index_addr + 4 z`` of
    the AXI memory ``axi`` (``range(planes)`` for ``index = 0``)."""
    if not d.index:
        return list(range(d.planes))
    raw = bytes(axi[d.index_addr:d.index_addr + INDEX_BYTES * d.planes])
    return [int.from_bytes(raw[i:i + INDEX_BYTES], "little")
            for i in range(0, len(raw), INDEX_BYTES)]


def plane_in_window(d: Descriptor, idx: int, win_base: int, win_limit: int) -> bool:
    """Whether the AXI rows of a plane with index ``idx`` lie in ``[win_base,
    win_limit)`` (exact integers: an address past 2**32 is outside)."""
    ab, ays, azs = d.axi
    lo = ab + idx * azs
    return lo >= win_base and lo + (d.rows - 1) * ays + d.row_bytes <= win_limit


def _planes(d: Descriptor, indices, win) -> tuple[list[int], DmaError]:
    """The AXI-side plane numbers copied, and the completion code (WINDOW if a plane
    of an indexed descriptor leaves ``win``)."""
    if not d.index:
        return list(range(d.planes)), DmaError.OK
    if indices is None or len(indices) != d.planes:
        raise ValueError(f"an indexed descriptor needs its {d.planes} indices, got "
                         f"{None if indices is None else len(indices)}")
    out = []
    for i in indices:
        if win is not None and not plane_in_window(d, i, *win):
            return out, DmaError.WINDOW
        out.append(i)
    return out, DmaError.OK


def _row(d: Descriptor, z: int, a: int, y: int) -> tuple[int, int]:
    """(src, dst) of row y of SRAM-side plane z whose AXI-side plane number is a."""
    sz, dz = (a, z) if d.dir == DmaDir.LOAD else (z, a)
    return (d.src + sz * d.src_zstride + y * d.src_ystride,
            d.dst + dz * d.dst_zstride + y * d.dst_ystride)


def rows(d: Descriptor, indices=None, win=None):
    """(src_row_addr, dst_row_addr) of every row in copy order (z-major).

    ``indices``: :func:`index_list` (required when ``d.index``); ``win``: the AXI window
    ``(base, limit)``, which stops an indexed copy before its first plane outside it.
    """
    planes, _ = _planes(d, indices, win)
    for z, a in enumerate(planes):
        for y in range(d.rows):
            yield _row(d, z, a, y)


def _row_bursts(cfg, W, addr, n, out, index=False):
    chunk = burst_chunk(cfg, W)
    a, end = addr, addr + n
    while a < end:
        k = min(end - a, chunk - a % chunk)
        first, last = a // W, (a + k - 1) // W
        strobes = []
        for w in range(first, last + 1):
            lo, hi = max(a, w * W), min(a + k, (w + 1) * W)
            strobes.append(sum(1 << (i - w * W) for i in range(lo, hi)))
        out.append(PlannedBurst(a, last - first + 1, strobes, index))
        a += k


def plan_bursts(cfg: DmaConfig, data_bytes: int, d: Descriptor, *, indices=None,
                win=None) -> list[PlannedBurst]:
    """The AXI bursts of an accepted descriptor, in issue order, with per-beat strobes.

    An indexed descriptor (``indices``: its :func:`index_list`, required) reads its
    index list beat by beat (:func:`index_reads`: a one-beat read at the address of the
    beat's first index needed, strobes = those indices' bytes, ``index = True``). The
    engine's order: the reads of the indices below ``D`` = :func:`index_lookahead`, then
    per plane z the reads of the indices below ``D + z + 1`` not yet read and plane z's
    rows. With ``win``, the plan ends at the first plane k outside the window (indices
    below ``D + k`` read, no row of plane k).
    """
    W = data_bytes
    out: list[PlannedBurst] = []
    planes, _ = _planes(d, indices, win)
    ab, ays, azs = d.axi
    D = index_lookahead(cfg, W)
    reads = index_reads(d, W) if d.index else []
    pending = iter(reads)
    nxt = next(pending, None)

    def read_below(lim):
        nonlocal nxt
        while nxt is not None and nxt[0] < lim:
            z, n = nxt
            _row_bursts(cfg, W, d.index_addr + INDEX_BYTES * z, INDEX_BYTES * n, out, True)
            nxt = next(pending, None)
    read_below(D)
    for z, a in enumerate(planes):
        read_below(D + z + 1)
        for y in range(d.rows):
            _row_bursts(cfg, W, ab + a * azs + y * ays, d.row_bytes, out)
    return out


def apply(d: Descriptor, hbm: np.ndarray, sram: np.ndarray, *, win_base: int = 0,
          win_limit: int | None = None) -> DmaError:
    """Perform an accepted copy in place on byte arrays (row order: later rows win).

    ``hbm`` is the AXI-side memory (it holds the index list), ``[win_base, win_limit)``
    the engine's AXI window (default: all of ``hbm``). Returns the completion code: OK,
    or WINDOW if an indexed plane leaves the window (earlier planes copied). Plane z's
    index is read just before plane z is copied.
    """
    src_mem, dst_mem = (hbm, sram) if d.dir == DmaDir.LOAD else (sram, hbm)
    win = (win_base, len(hbm) if win_limit is None else win_limit)
    n = d.row_bytes
    for z in range(d.planes):
        a = z
        if d.index:
            at = d.index_addr + INDEX_BYTES * z
            a = int.from_bytes(bytes(hbm[at:at + INDEX_BYTES]), "little")
            if not plane_in_window(d, a, *win):
                return DmaError.WINDOW
        for y in range(d.rows):
            s, t = _row(d, z, a, y)
            dst_mem[t:t + n] = src_mem[s:s + n]
    return DmaError.OK


def stream_cycles(cfg: DmaConfig, hbm: HbmConfig, descs: list[Descriptor], *,
                  latency: int | None = None) -> list[int]:
    """Analytic completion cycle of each descriptor of a back-to-back stream of loads.

    Cycle 0 is the one in which the first descriptor is accepted; all are queued then
    and the completion sink is always ready. The engine's front end takes a queued
    descriptor (1 cycle), checks it (1 cycle; waits while ``cfg.descs_in_flight`` descriptors
    are incomplete), then issues one burst address per cycle (waiting while
    ``max_outstanding`` bursts are in flight); the next descriptor is taken in the
    cycle of the last address. An address reaches the stub one cycle after it is
    issued, its first beat ``latency`` cycles later, and the port moves one beat per
    cycle (``channels * bytes_per_cycle / data_bytes`` if that is less); a descriptor
    completes 2 cycles after its last beat. Same-direction descriptors only (a change
    of direction drains first, not modelled). ``stream_cycles(...)[-1] + 1`` is the
    bench's "first accepted to last completion" figure; for one descriptor it is the
    isolated latency ``latency + beats + 6``. Plain descriptors only (``index = 0``):
    the per-plane cost of an indexed one is measured (docs/dma.md), not modelled.
    """
    lat = hbm.read_latency if latency is None else latency
    rate = min(1.0, hbm.channels * hbm.bytes_per_cycle / hbm.data_bytes)
    maxo = min(cfg.max_outstanding, hbm.max_outstanding * hbm.channels)
    W, in_flight = hbm.data_bytes, cfg.descs_in_flight
    fetch = 1.0                 # cycle the front end takes the next descriptor
    data_free = 0.0             # first cycle the read data port is free
    issue = -1.0                # cycle of the latest burst address issue
    burst_end: list[float] = []
    done: list[int] = []
    if any(d.index for d in descs):
        raise ValueError("stream_cycles models plain descriptors only (index = 0)")
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
