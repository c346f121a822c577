"""Golden and cycle models of the weight-stationary systolic array (INT8 and FP8).

Numerics (the contract the RTL matches bit-exactly): signed INT8 operands, exact
products, INT32 two's-complement accumulation. Sums are computed exactly in int64 and
wrapped to 32 bits explicitly (:func:`wrap_int32`), never by relying on numpy overflow.
Because wrap-around addition is associative, the INT8 result does not depend on the
order of accumulation; the tile order is still modelled exactly because the array emits
one partial result per weight tile.

Tiling (what a controller feeding the array does, and what the testbench does):
the GEMM ``Y[M, N] = X[M, K] @ W[K, N]`` is cut into *tiles* of R rows of K and C
columns of N, visited N-tile-major, K-tile-minor::

    for n0 in range(0, N, C):
        for k0 in range(0, K, R):
            load W[k0:k0+R, n0:n0+C] (zero-padded to R x C), stream X[:, k0:k0+R]

The array returns ``X[:, k0:k0+R] @ W[k0:k0+R, n0:n0+C]`` per tile; partial tiles of
the same n0 are added (wrapping) to give ``Y[:, n0:n0+C]``.

FP8 tiles (``plan_gemm(..., fp8=True)``, operands are FP8 codes) run through the same
tiling. Each tile's output is ``models.fp8.gemm_fp8(acts, fmt_a, weights, fmt_w,
tile_k=R)`` of the zero-padded tile (the column's products summed exactly in fixed
point, rounded once to binary32, ties to even); the partials of the same n0 are combined
in increasing k0 with :func:`models.fp32.fp32_add` starting from +0.0. Zero padding in
both operands adds ``+0`` products, which leave every partial unchanged, so the result
equals ``gemm_fp8(x, fmt_a, w, fmt_w, tile_k=R)`` on the unpadded matrices (checked in
tests/models/test_systolic_model.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from models.config import SystolicConfig
from models.fp32 import fp32_add
from models.fp8 import _check_codes
from models.fp8 import gemm_fp8 as _gemm_fp8

__all__ = [
    "wrap_int32", "gemm_int8", "Tile", "plan_gemm", "SystolicArrayModel",
    "array_cycles", "scalesim_cycles", "utilization", "ideal_cycles",
]

_INT8_MIN, _INT8_MAX = -128, 127


def wrap_int32(v) -> np.ndarray:
    """Two's-complement wrap of exact (int64 or Python int) values to int32."""
    v = np.asarray(v, dtype=np.int64)
    return (((v + 2**31) % 2**32) - 2**31).astype(np.int32)


def _check_int8(name: str, a) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, got dtype {a.dtype}")
    if a.size and (a.min() < _INT8_MIN or a.max() > _INT8_MAX):
        raise ValueError(f"{name} has values outside INT8 [-128, 127]: "
                         f"min {a.min()}, max {a.max()}")
    return a.astype(np.int64)


def gemm_int8(x, w) -> np.ndarray:
    """Golden INT8 GEMM: ``wrap_int32(X @ W)`` with exact int64 products and sums.

    Parameters
    ----------
    x : array_like, shape (M, K), values in [-128, 127]
    w : array_like, shape (K, N), values in [-128, 127]

    Returns
    -------
    numpy.ndarray of int32, shape (M, N)

    Notes
    -----
    |sum| <= K * 2^14, so int64 is exact for any K < 2^48; the wrap is explicit.
    """
    x, w = _check_int8("x", x), _check_int8("w", w)
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[0]:
        raise ValueError(f"gemm_int8 needs (M,K) @ (K,N), got {x.shape} @ {w.shape}")
    return wrap_int32(x @ w)


@dataclass(frozen=True)
class Tile:
    """One weight tile of a GEMM and the activation slice streamed through it."""

    index: int
    k0: int
    n0: int
    weights: np.ndarray   # int8 (R, C), or uint8 FP8 codes; zero-padded
    acts: np.ndarray      # int8 (M, R), or uint8 FP8 codes; zero-padded
    last_k: bool          # last K-tile of this N column block


def plan_gemm(config: SystolicConfig, x, w, *, fp8: bool = False) -> list[Tile]:
    """Cut ``X @ W`` into the array's tiles, in the order the array runs them.

    With ``fp8=True`` the operands are FP8 codes (uint8) and tiles hold uint8 codes,
    padded with code 0 (+0.0) in both operands.
    """
    if fp8:
        x, w = _check_codes(x, "x"), _check_codes(w, "w")
    else:
        x, w = _check_int8("x", x), _check_int8("w", w)
    dt = np.uint8 if fp8 else np.int8
    if x.ndim != 2 or w.ndim != 2 or x.shape[1] != w.shape[0]:
        raise ValueError(f"plan_gemm needs (M,K) @ (K,N), got {x.shape} @ {w.shape}")
    (M, K), N = x.shape, w.shape[1]
    if min(M, K, N) < 1:
        raise ValueError(f"GEMM dimensions must be >= 1, got M={M} K={K} N={N}")
    R, C = config.rows, config.cols
    tiles = []
    for n0 in range(0, N, C):
        for k0 in range(0, K, R):
            wt = np.zeros((R, C), dt)
            blk = w[k0:k0 + R, n0:n0 + C]
            wt[:blk.shape[0], :blk.shape[1]] = blk
            at = np.zeros((M, R), dt)
            blk = x[:, k0:k0 + R]
            at[:, :blk.shape[1]] = blk
            tiles.append(Tile(len(tiles), k0, n0, wt, at, k0 + R >= K))
    return tiles


class SystolicArrayModel:
    """Bit-exact model of :class:`rtl.systolic.array.SystolicArray`.

    Parameters
    ----------
    config : SystolicConfig
        The same config object the RTL was built from.
    """

    def __init__(self, config: SystolicConfig):
        self.config = config

    def tile_output(self, acts, weights) -> np.ndarray:
        """Result vectors of one tile: ``wrap_int32(acts @ weights)``, shape (M, C)."""
        R, C = self.config.rows, self.config.cols
        acts, weights = _check_int8("acts", acts), _check_int8("weights", weights)
        if acts.ndim != 2 or acts.shape[1] != R or weights.shape != (R, C):
            raise ValueError(f"tile needs acts (M,{R}) and weights ({R},{C}), "
                             f"got {acts.shape} and {weights.shape}")
        return wrap_int32(acts @ weights)

    def gemm(self, x, w) -> np.ndarray:
        """The GEMM assembled from per-tile outputs, exactly as the testbench does."""
        x, w = np.asarray(x), np.asarray(w)
        M, N = x.shape[0], w.shape[1]
        C = self.config.cols
        y = np.zeros((M, N + C), np.int64)
        for t in plan_gemm(self.config, x, w):
            part = self.tile_output(t.acts, t.weights)
            y[:, t.n0:t.n0 + C] = wrap_int32(y[:, t.n0:t.n0 + C] + part)
        return y[:, :N].astype(np.int32)


    def tile_output_fp8(self, acts, fmt_a, weights, fmt_w) -> np.ndarray:
        """Result vectors of one FP8 tile as float32, shape (M, C).

        ``acts`` (M, R) and ``weights`` (R, C) are FP8 codes; the column sums the R
        products exactly and rounds once: ``RNE_f32(sum_r a[m, r] * w[r, c])``.
        """
        R, C = self.config.rows, self.config.cols
        acts, weights = _check_codes(acts, "acts"), _check_codes(weights, "weights")
        if acts.ndim != 2 or acts.shape[1] != R or weights.shape != (R, C):
            raise ValueError(f"tile needs acts (M,{R}) and weights ({R},{C}), "
                             f"got {acts.shape} and {weights.shape}")
        return _gemm_fp8(acts, fmt_a, weights, fmt_w, tile_k=R)

    def gemm_fp8(self, a, fmt_a, w, fmt_w) -> np.ndarray:
        """The FP8 GEMM assembled from per-tile outputs as the testbench does it.

        Partials of the same N block are added in increasing k0 into ``+0.0`` with
        :func:`models.fp32.fp32_add` (what the accumulator SRAM does). Returns float32
        (M, N); every NaN is ``0x7FC00000``.
        """
        a, w = np.asarray(a), np.asarray(w)
        M, N = a.shape[0], w.shape[1]
        C = self.config.cols
        y = np.zeros((M, N + C), np.float32)
        for t in plan_gemm(self.config, a, w, fp8=True):
            part = self.tile_output_fp8(t.acts, fmt_a, t.weights, fmt_w)
            y[:, t.n0:t.n0 + C] = fp32_add(y[:, t.n0:t.n0 + C], part)
        return y[:, :N].copy()


def array_cycles(config: SystolicConfig, m: int, k: int, n: int) -> int:
    """Cycles of a GEMM on the RTL array with no stalls and back-to-back tiles.

    Counted from the first weight row accepted to the last result vector out,
    inclusive: R cycles to load the first tile, then one tile every max(M, R) cycles
    (the next tile's R weight rows load while the current tile's M vectors stream),
    then the last tile's M vectors and the pipeline latency ``config.latency`` (R + C + 2
    for INT8-only arrays, R + C + 7 with the FP8 datapath: the input register, the PEs'
    pipeline and the columns' rounding).
    """
    R = config.rows
    folds = config.folds(k, n)
    return R + (folds - 1) * max(m, R) + m + config.latency


def scalesim_cycles(config: SystolicConfig, m: int, k: int, n: int) -> int:
    """SCALE-Sim's weight-stationary count: folds * (2R + C + M - 2)."""
    R, C = config.rows, config.cols
    return config.folds(k, n) * (2 * R + C + m - 2)


def utilization(config: SystolicConfig, m: int, k: int, n: int, cycles: int) -> float:
    """Useful MACs / (R * C * cycles)."""
    return (m * k * n) / (config.peak_macs_per_cycle * cycles)


def ideal_cycles(config: SystolicConfig, m: int, k: int, n: int) -> int:
    """Compute bound: M * ceil(K/R) * ceil(N/C) (every PE busy every cycle)."""
    return m * math.ceil(k / config.rows) * math.ceil(n / config.cols)
