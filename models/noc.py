"""Analytical models of the mesh NoC: routes, zero-load latency, throughput bounds.

The RTL (``rtl.noc``) is checked against these numbers: the zero-load latency exactly
(tb/noc/test_noc.py), the throughput as a fraction of the bound (scripts/bench_noc.py).

Latency model (cycles from the head flit accepted on ``i_inject`` to the tail flit
accepted on ``o_eject``, nothing else in the network, sink always ready)::

    T0 = hops * 2            two cycles per router-to-router hop
       + 3                   source router (2) + ejection buffer (1)
       + (length - 1)        serialization of the rest of the packet

Throughput bound of uniform-random traffic on a k-ary 1D line of routers with XY
routing: the middle channel carries, per direction, lambda * k / 4 flits per cycle
(k even; lambda = flits injected per node per cycle), so lambda <= 4 / k. For k odd the
worst channel carries lambda * (k^2 - 1) / (4k). A k x m mesh is limited by its longer
dimension and by the one flit per cycle of each injection/ejection port.

Other patterns (transpose, hotspot, neighbour): :func:`pattern_bound` routes the
traffic matrix XY and takes the most loaded channel or ejection port (brute force).

Memory messages (the network interfaces, ``rtl/noc/ni.py``, derive their layouts from
these definitions): a header (:func:`mem_header_fields`: ``op`` (:class:`MemOp`),
``addr``, ``len`` = beats - 1, ``id``, packed LSB first into a head flit's payload) and,
for WRITE and READ_RESP (:func:`has_data`), ``len + 1`` data beats. A response carries
its status, an AXI :class:`models.axi.Resp` code, in the low :data:`STATUS_BITS` bits of
``addr`` (:func:`status`).
"""
from __future__ import annotations

import enum
from collections import Counter
from typing import TYPE_CHECKING

from models.axi import RESP_BITS, Resp

if TYPE_CHECKING:     # annotations only: models.config imports this module (MEM_OP_BITS)
    from models.config import NocConfig

__all__ = ["coords", "node", "hops", "xy_route", "zero_load_latency",
           "average_zero_load_latency", "line_bound", "uniform_bound", "bound_4_over_k",
           "hotspot_bound", "channel_loads", "traffic_matrix", "pattern_bound", "PATTERNS",
           "ROUTER_CYCLES", "HOP_CYCLES",
           "MemOp", "MEM_OP_BITS", "STATUS_BITS", "has_data", "mem_header_fields", "status"]

HOP_CYCLES = 2          # input buffer write + allocation/switch into the output register
ROUTER_CYCLES = 2
EJECT_CYCLES = 1


def coords(cfg: NocConfig, n: int) -> tuple[int, int]:
    if not 0 <= n < cfg.nodes:
        raise ValueError(f"node {n} is not in the {cfg.cols} x {cfg.rows} mesh")
    return n % cfg.cols, n // cfg.cols


def node(cfg: NocConfig, x: int, y: int) -> int:
    if not (0 <= x < cfg.cols and 0 <= y < cfg.rows):
        raise ValueError(f"({x}, {y}) is not in the {cfg.cols} x {cfg.rows} mesh")
    return y * cfg.cols + x


def hops(cfg: NocConfig, src: int, dst: int) -> int:
    """Router-to-router links crossed: the Manhattan distance."""
    (sx, sy), (dx, dy) = coords(cfg, src), coords(cfg, dst)
    return abs(sx - dx) + abs(sy - dy)


def xy_route(cfg: NocConfig, src: int, dst: int) -> list[int]:
    """Nodes visited by dimension-order routing, X first, both ends included."""
    (x, y), (dx, dy) = coords(cfg, src), coords(cfg, dst)
    path = [node(cfg, x, y)]
    while x != dx:
        x += 1 if dx > x else -1
        path.append(node(cfg, x, y))
    while y != dy:
        y += 1 if dy > y else -1
        path.append(node(cfg, x, y))
    return path


def zero_load_latency(cfg: NocConfig, n_hops: int, length: int = 1) -> int:
    """Cycles from head accepted at the source to tail accepted at the destination."""
    if n_hops < 0 or length < 1:
        raise ValueError(f"need hops >= 0 and length >= 1, got {n_hops}, {length}")
    return HOP_CYCLES * n_hops + ROUTER_CYCLES + EJECT_CYCLES + (length - 1)


def average_zero_load_latency(cfg: NocConfig, length: int = 1) -> float:
    """Zero-load latency averaged over uniform-random (src, dst) pairs, self included."""
    tot = sum(zero_load_latency(cfg, hops(cfg, s, d), length)
              for s in range(cfg.nodes) for d in range(cfg.nodes))
    return tot / cfg.nodes ** 2


def line_bound(k: int) -> float:
    """Uniform-random saturation injection rate of a k-node line (flits/node/cycle)."""
    if k <= 1:
        return float("inf")
    return 4.0 / k if k % 2 == 0 else 4.0 * k / (k * k - 1)


def bound_4_over_k(k: int) -> float:
    """The textbook 4/k bound of a k x k mesh (flits/node/cycle)."""
    return 4.0 / k


def uniform_bound(cfg: NocConfig) -> float:
    """Uniform-random saturation bound of the mesh, capped by the 1 flit/cycle ports."""
    return min(1.0, line_bound(cfg.cols), line_bound(cfg.rows))


def hotspot_bound(cfg: NocConfig, frac: float) -> float:
    """Bound when a fraction ``frac`` of all packets go to one node (the rest uniform):
    that node ejects at most one flit per cycle."""
    n = cfg.nodes
    return min(uniform_bound(cfg) / max(1e-9, 1 - frac), 1.0 / (n * frac + (1 - frac)))


def channel_loads(cfg: NocConfig, traffic) -> Counter:
    """Flits per cycle on each directed link (a, b) when node s sends ``traffic[s][d]``
    flits per cycle to d, routed XY; brute force, used to check the bounds."""
    load = Counter()
    for s in range(cfg.nodes):
        for d in range(cfg.nodes):
            rate = traffic[s][d]
            if rate:
                path = xy_route(cfg, s, d)
                for a, b in zip(path, path[1:]):
                    load[a, b] += rate
    return load


PATTERNS = ("uniform", "transpose", "hotspot", "bursty", "neighbour")


def traffic_matrix(cfg: NocConfig, pattern: str, hot_frac: float = 0.2,
                   hot: tuple[int, int] | None = None) -> list[list[float]]:
    """``t[s][d]``: fraction of node s's packets that go to d, for the patterns of the
    traffic generators (tb/noc/traffic.py). Bursty has uniform destinations; hotspot
    sends ``hot_frac`` to ``hot`` (default: the centre node) and the rest uniformly;
    transpose maps (x, y) to (y mod cols, x mod rows); neighbour to
    ((x + 1) mod cols, (y + 1) mod rows)."""
    if pattern not in PATTERNS:
        raise ValueError(f"unknown traffic pattern {pattern!r}; known: {PATTERNS}")
    n = cfg.nodes
    hx, hy = hot if hot is not None else (cfg.cols // 2, cfg.rows // 2)
    t = [[0.0] * n for _ in range(n)]
    for s in range(n):
        x, y = coords(cfg, s)
        if pattern in ("uniform", "bursty", "hotspot"):
            share = (1 - hot_frac if pattern == "hotspot" else 1.0) / n
            for d in range(n):
                t[s][d] = share
            if pattern == "hotspot":
                t[s][node(cfg, hx, hy)] += hot_frac
        elif pattern == "transpose":
            t[s][node(cfg, y % cfg.cols, x % cfg.rows)] = 1.0
        else:
            t[s][node(cfg, (x + 1) % cfg.cols, (y + 1) % cfg.rows)] = 1.0
    return t


def pattern_bound(cfg: NocConfig, pattern: str, hot_frac: float = 0.2,
                  hot: tuple[int, int] | None = None) -> float:
    """Saturation bound (flits/node/cycle, every node injecting the same rate) of a
    pattern: one flit per cycle on the most loaded link or ejection port, routed XY.
    Equals :func:`uniform_bound` for uniform traffic."""
    t = traffic_matrix(cfg, pattern, hot_frac, hot)
    worst = max(channel_loads(cfg, t).values(), default=0.0)
    eject = max(sum(t[s][d] for s in range(cfg.nodes)) for d in range(cfg.nodes))
    return min(1.0, 1.0 / max(worst, eject, 1e-12))


# --- memory messages --------------------------------------------------------------------


class MemOp(enum.IntEnum):
    """The ``op`` field of a memory message header."""

    READ = 0          # request, no data; answered by READ_RESP with len + 1 beats
    WRITE = 1         # request with len + 1 beats; answered by WRITE_RESP
    READ_RESP = 2
    WRITE_RESP = 3


#: Bits of the header's ``op`` field.
MEM_OP_BITS = 2
#: A response's status (:class:`models.axi.Resp`) is ``addr`` modulo ``2 ** STATUS_BITS``.
STATUS_BITS = RESP_BITS


def has_data(op: int) -> bool:
    """The message is followed by ``len + 1`` data beats (WRITE, READ_RESP)."""
    return op in (MemOp.WRITE, MemOp.READ_RESP)


def mem_header_fields(cfg: NocConfig) -> dict[str, int]:
    """Fields of a memory message header and their widths, LSB first, as packed into the
    payload of a head flit (``NocConfig`` checks that they fit)."""
    return {"op": MEM_OP_BITS, "addr": cfg.addr_bits, "len": cfg.len_bits, "id": cfg.id_bits}


def status(addr: int) -> Resp:
    """The status a response carries in its ``addr`` field."""
    return Resp(addr & ((1 << STATUS_BITS) - 1))
