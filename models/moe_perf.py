"""Analytical cycle bound of one MoE layer on the chip (docs/moe.md, issue 15).

:func:`layer_bound` (with :func:`place_experts` and :func:`expert_array_cycles`): the
busiest tile's array and vector cycles and the HBM traffic of a placement of the experts
on the tiles, for the numerics of :mod:`models.moe` (the RTL is planned, not built).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.compiler import ceil_div
from models.moe import MoeProblem, macs
from models.vector import vector_latency

__all__ = ["expert_array_cycles", "place_experts", "MoeBound", "layer_bound"]



def expert_array_cycles(config, problem: MoeProblem, rows: int) -> int:
    """Array cycles of one expert's two GEMMs over ``rows`` tokens on one tile.

    Weight-stationary: every R x C weight tile of W1 and W2 is loaded once and holds the
    array ``max(rows, R)`` cycles (``models.tensor_core.matmul_cycles`` without its
    fill and drain); 0 for no rows.
    """
    R, C = config.systolic.rows, config.systolic.cols
    d, f = problem.d_model, problem.d_ff
    wtiles = ceil_div(d, R) * ceil_div(f, C) + ceil_div(f, R) * ceil_div(d, C)
    return wtiles * max(rows, R) if rows else 0


def place_experts(config, problem: MoeProblem, tokens_per_expert, *,
                  split: bool = True) -> list[list[tuple[int, int]]]:
    """Experts (or pieces of them) on tiles: per tile a list of ``(expert, rows)``.

    Longest-processing-time first: pieces in decreasing cost go to the least loaded
    tile (lowest index on ties). With ``split``, an expert with more rows than the
    per-tile share ``ceil(kept / tiles)`` is cut by tokens into ``ceil(rows / share)``
    near-equal pieces, each re-streaming the expert's weights; a piece is never cut
    below R rows (the array would wait for weights).
    """
    tiles, R = config.soc.tiles, config.systolic.rows
    tpe = [int(n) for n in tokens_per_expert]
    share = max(1, ceil_div(sum(tpe), tiles))
    pieces = []
    for e, n in enumerate(tpe):
        parts = min(ceil_div(n, share), max(1, n // R), tiles) if split and n > share else 1
        pieces += [(e, n // parts + (i < n % parts)) for i in range(parts)]
    load = [0] * tiles
    out: list[list[tuple[int, int]]] = [[] for _ in range(tiles)]
    for e, n in sorted(pieces, key=lambda p: (-expert_array_cycles(config, problem, p[1]),
                                              p[0])):
        t = min(range(tiles), key=lambda i: (load[i], i))
        out[t].append((e, n))
        load[t] += expert_array_cycles(config, problem, n)
    return out


@dataclass(frozen=True)
class MoeBound:
    """Analytical cycles of one layer on a chip (:func:`layer_bound`; docs/moe.md).

    Attributes
    ----------
    macs : int
        Useful MACs (:func:`macs` of the kept assignments).
    compute_cycles : float
        ``macs / (tiles x R x C)``: every PE busy every cycle.
    array_cycles : int
        Busiest tile's MATMUL cycles (its share of the router GEMM plus its experts).
    vector_cycles : int
        Busiest tile's vector-unit cycles (rows + one pipeline latency per command).
    hbm_bytes, hbm_cycles : int, float
        Bytes to and from HBM, at the channels' peak.
    hbm_footprint : int
        Bytes the layer keeps in HBM (weights, x, expert outputs, out).
    pieces : int
        Expert pieces placed (E, plus one per extra piece of a split expert).
    """

    macs: int
    compute_cycles: float
    array_cycles: int
    vector_cycles: int
    hbm_bytes: int
    hbm_cycles: float
    hbm_footprint: int
    pieces: int

    @property
    def overlapped_cycles(self) -> float:
        """Lower bound with the vector unit overlapping the array."""
        return max(self.array_cycles, self.vector_cycles, self.hbm_cycles)

    @property
    def fenced_cycles(self) -> float:
        """Lower bound with vector commands fenced against MATMULs (today's dispatcher)."""
        return max(self.array_cycles + self.vector_cycles, self.hbm_cycles)

    def util(self, cycles: float) -> float:
        """Array utilization of a run of ``cycles``: ``compute_cycles / cycles``."""
        return self.compute_cycles / cycles


def layer_bound(config, problem: MoeProblem, tokens_per_expert=None, *,
                split: bool = True) -> MoeBound:
    """Cycles the layer cannot beat on ``config`` with the placement of
    :func:`place_experts` (``tokens_per_expert`` default: the fair share, rounded up).

    The router GEMM and softmax are split over the tiles by tokens; per tile the vector
    unit runs the router conversion and softmax (ROWMAX, EXP, NORM), one GELU command
    per d_ff column tile and one COPY per d_model column tile per expert piece, and the
    combine (``k`` rows of ``ceil(d_model / C)`` per token).
    """
    sa, T, k = config.systolic, problem.tokens, problem.top_k
    R, C, tiles = sa.rows, sa.cols, config.soc.tiles
    d, f, E = problem.d_model, problem.d_ff, problem.experts
    if tokens_per_expert is None:
        tokens_per_expert = [ceil_div(problem.assignments, E)] * E
    kept = int(np.sum(tokens_per_expert))
    placed = place_experts(config, problem, tokens_per_expert, split=split)
    tok = ceil_div(T, tiles)
    router = ceil_div(d, R) * ceil_div(E, C) * max(tok, R)
    lat = vector_latency(C)
    array = max(router + sum(expert_array_cycles(config, problem, n) for _, n in ps)
                for ps in placed)
    vec_fixed = tok * (ceil_div(E, C) + 3) + 4 * lat + tok * k * ceil_div(d, C) + k * lat
    vector = max(vec_fixed + sum(n * (ceil_div(f, C) + ceil_div(d, C)) + 2 * lat for _, n in ps)
                 for ps in placed)
    pieces = sum(len(ps) for ps in placed)
    wbytes = 2 * d * f
    moved = (pieces * wbytes + d * E + T * d          # weights per piece, router, x
             + kept * d + 2 * kept * d * 4 + T * d * 4)  # gather, y out and back, out
    footprint = E * wbytes + d * E + T * d + kept * d * 4 + T * d * 4
    peak = config.hbm.channels * config.hbm.bytes_per_cycle
    n_macs = macs(problem, tokens_per_expert)
    return MoeBound(n_macs, n_macs / (tiles * sa.peak_macs_per_cycle), array, vector,
                    moved, moved / peak, footprint, pieces)
