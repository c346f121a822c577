"""Decode against a paged KV cache: the problem, the cache layout, the append, references.

One decode step: every sequence ``b`` of a batch has ``context[b]`` tokens in the cache
and one new token; its query ``q_b`` (d) attends over the ``kv_len = context + 1``
keys (the cached ones and its own new K/V, appended first):
``o_b = softmax(q_b K_b^T s) V_b``.

**Paged cache** (vLLM's layout). K and V live in two pools of fixed-size pages of
``P = page_tokens`` tokens (a multiple of the array size ``T``); a sequence owns a
*page table* (the pool indices of its pages, in token order, any pool order) and a
length. Token ``t`` of a sequence is slot ``o = t % P`` of page ``table[t // P]``. Pages
hold codes in the layout the array reads (``models.attention``'s weight tiles), so a
load of a page's first ``n`` key blocks is one contiguous copy of ``n * d * T`` bytes:

* K page: K^T tiles ``[block jb][chunk c][row r][col]`` = ``K[jb*T + col, c*T + r]``;
  token slot ``o`` (block ``o // T``, column ``o % T``), element ``e = c*T + r`` is byte
  ``(o // T) * d * T + e * T + o % T``;
* V page: V tiles ``[jb][c][r][col]`` = ``V[jb*T + r, c*T + col]``; element ``e`` is
  byte ``(o // T) * d * T + (e // T) * T * T + (o % T) * T + e % T``.

**Quantization.** One scale per tensor for the whole cache, ``s_k`` and ``s_v``,
computed over the valid tokens when the cache is built (INT8 ``max|x| / 127``, FP8
E4M3 ``max|x| / 448``, rounded to binary32). New tokens are quantized with the cache's
scales, saturating (INT8 clipped to +-127, E4M3 to +-448): a cache never rescales its
pages. The query of each sequence is quantized on its own (``s_q[b]``).

**Append.** :func:`append` writes the new K/V codes of every sequence at slot
``len % P`` of its last page; a sequence whose last page is full (or that has no page)
takes a new page from the free list first (:class:`CacheFull` when none is left).

:func:`reference` is float64 attention over the dequantized codes (the hardware's
arithmetic error only); :func:`golden_decode` is the chip program's arithmetic
(``models.compiler_decode``: per key block softmax, a merge tree, a combine across
splits) written with the ``models.vector`` primitives, bit-exact to the chip model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from models.attention import P_SCALE, cosine
from models.fp8 import E4M3, decode, encode, gemm_fp8
from models.fp32 import fp32_add
from models.vector import (block_scale_k, dequant_written, exp_approx, fadd, fmax, fmul,
                           fneg, i2f, pow2, recip_approx, row_max, row_sum, to_int8)
from models.tensor_cmd import OutFmt

__all__ = ["FORMATS", "DecodeProblem", "PagedKVCache", "CacheFull", "cache_scale",
           "quantize", "dequantize", "build_cache", "append", "gather", "token_offsets",
           "reference", "golden_decode", "accuracy"]

FORMATS = ("int8", "fp8")
f32 = np.float32


class CacheFull(ValueError):
    """The free list is empty when a sequence needs a new page."""


@dataclass(frozen=True)
class DecodeProblem:
    """Shape of one decode step.

    Parameters
    ----------
    batch : int
        Sequences (>= 1).
    head_dim : int
        d.
    context : tuple of int
        Tokens already in the cache, per sequence (>= 0); the step attends over
        ``context[b] + 1`` keys.
    page_tokens : int
        Tokens per page (a multiple of the array size on a chip).
    fmt : str
        Cache format, ``"int8"`` or ``"fp8"`` (E4M3).
    scale : float or None
        Softmax scale (None: ``1/sqrt(d)``).
    """

    batch: int
    head_dim: int
    context: tuple
    page_tokens: int
    fmt: str = "int8"
    scale: float | None = None

    def __post_init__(self):
        if self.fmt not in FORMATS:
            raise ValueError(f"DecodeProblem.fmt must be one of {FORMATS}, got {self.fmt!r}")
        for name in ("batch", "head_dim", "page_tokens"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"DecodeProblem.{name} must be an int >= 1, got {v!r}")
        ctx = tuple(self.context)
        if len(ctx) != self.batch or any(isinstance(c, bool) or not isinstance(c, int)
                                         or c < 0 for c in ctx):
            raise ValueError(f"DecodeProblem.context must be {self.batch} ints >= 0, "
                             f"got {self.context!r}")
        object.__setattr__(self, "context", ctx)

    @property
    def softmax_scale(self) -> float:
        return 1.0 / math.sqrt(self.head_dim) if self.scale is None else self.scale

    @property
    def kv_len(self) -> tuple:
        """Keys attended per sequence (context + the new token)."""
        return tuple(c + 1 for c in self.context)


@dataclass
class PagedKVCache:
    """The pools, page tables, lengths, free list and scales (module docstring).

    ``k_pages`` / ``v_pages`` are ``uint8[num_pages, page_tokens * head_dim]`` in the
    array's layout for tile size ``tile``.
    """

    fmt: str
    head_dim: int
    page_tokens: int
    tile: int
    k_pages: np.ndarray
    v_pages: np.ndarray
    tables: list
    lengths: list
    free: list
    s_k: float
    s_v: float

    @property
    def num_pages(self) -> int:
        return self.k_pages.shape[0]

    @property
    def page_bytes(self) -> int:
        return self.page_tokens * self.head_dim

    def copy(self) -> "PagedKVCache":
        return replace(self, k_pages=self.k_pages.copy(), v_pages=self.v_pages.copy(),
                       tables=[list(t) for t in self.tables], lengths=list(self.lengths),
                       free=list(self.free))


def cache_scale(x_valid: np.ndarray, fmt: str) -> float:
    """Per-tensor scale of the valid tokens (binary32): ``max|x| / 127`` or ``/ 448``."""
    amax = float(np.max(np.abs(x_valid))) if np.size(x_valid) else 0.0
    top = 127.0 if fmt == "int8" else E4M3.max_value
    return float(f32(amax / top)) if amax > 0 else 1.0


def quantize(x, fmt: str, s: float) -> np.ndarray:
    """Codes (uint8) of ``x / s``, saturating (INT8 +-127, E4M3 +-448)."""
    x = np.asarray(x, np.float64) / s
    if fmt == "int8":
        return np.clip(np.rint(x), -127, 127).astype(np.int8).view(np.uint8)
    return encode(np.clip(x, -E4M3.max_value, E4M3.max_value).astype(np.float32), E4M3)


def dequantize(codes, fmt: str, s: float) -> np.ndarray:
    """float64 values of codes."""
    codes = np.asarray(codes, np.uint8)
    if fmt == "int8":
        return codes.view(np.int8).astype(np.float64) * s
    return decode(codes, E4M3).astype(np.float64) * s


def token_offsets(cache: PagedKVCache, slot: int) -> tuple[np.ndarray, np.ndarray]:
    """Byte offsets inside a K page and a V page of the d elements of token ``slot``."""
    T, d = cache.tile, cache.head_dim
    e = np.arange(d)
    base = (slot // T) * d * T
    return base + e * T + slot % T, base + (e // T) * T * T + (slot % T) * T + e % T


def _write(cache: PagedKVCache, b: int, t: int, kc: np.ndarray, vc: np.ndarray) -> None:
    page = cache.tables[b][t // cache.page_tokens]
    ko, vo = token_offsets(cache, t % cache.page_tokens)
    cache.k_pages[page, ko] = kc
    cache.v_pages[page, vo] = vc


def gather(cache: PagedKVCache, b: int, whole_blocks: bool = False
           ) -> tuple[np.ndarray, np.ndarray]:
    """K and V codes (``len x d`` uint8) of sequence ``b`` in token order
    (``whole_blocks``: up to the end of the last key block, as the array reads them)."""
    P, T, d = cache.page_tokens, cache.tile, cache.head_dim
    n = cache.lengths[b]
    pages = cache.tables[b][:-(-n // P)] if n else []
    k = cache.k_pages[pages].reshape(-1, P // T, d // T, T, T)        # [p][jb][c][r][col]
    v = cache.v_pages[pages].reshape(-1, P // T, d // T, T, T)        # [p][jb][c][r][col]
    k = k.transpose(0, 1, 4, 2, 3).reshape(-1, d)                      # token, (c, r)
    v = v.transpose(0, 1, 3, 2, 4).reshape(-1, d)                      # token, (c, col)
    n = -(-n // T) * T if whole_blocks else n
    return k[:n], v[:n]


def build_cache(k_seqs, v_seqs, *, tile: int, page_tokens: int, fmt: str = "int8",
                num_pages: int | None = None, rng: np.random.Generator | None = None,
                spare_pages: int = 0, order=None) -> PagedKVCache:
    """A cache holding float K/V sequences (``len_b x d`` each), quantized per tensor
    over all their tokens; pages are taken from the pool in a shuffled order (``rng``,
    default seed 0) so tables are out of order. ``num_pages`` defaults to the pages the
    sequences need after one more token each, plus ``spare_pages``; ``order`` (a
    permutation of the pool) replaces the shuffle."""
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    if page_tokens % tile:
        raise ValueError(f"page_tokens {page_tokens} must be a multiple of the array "
                         f"size {tile}")
    ks = [np.asarray(k, np.float64) for k in k_seqs]
    vs = [np.asarray(v, np.float64) for v in v_seqs]
    d = ks[0].shape[1] if ks and ks[0].ndim == 2 else -1
    if d < 1 or d % tile or any(k.ndim != 2 or k.shape[1] != d or v.shape != k.shape
                                for k, v in zip(ks, vs)) or len(ks) != len(vs):
        raise ValueError(f"k and v sequences must be len x d with d a multiple of {tile}")
    allk = np.concatenate(ks) if ks else np.zeros((0, d))
    allv = np.concatenate(vs) if vs else np.zeros((0, d))
    if not (np.all(np.isfinite(allk)) and np.all(np.isfinite(allv))):
        raise ValueError("k and v must be finite")
    need = sum(-(-(len(k) + 1) // page_tokens) for k in ks) + spare_pages
    num_pages = need if num_pages is None else num_pages
    rng = np.random.default_rng(0) if rng is None else rng
    order = [int(p) for p in (rng.permutation(num_pages) if order is None else order)]
    if sorted(order) != list(range(num_pages)):
        raise ValueError(f"order must be a permutation of range({num_pages})")
    pb = page_tokens * d
    cache = PagedKVCache(fmt, d, page_tokens, tile, np.zeros((num_pages, pb), np.uint8),
                         np.zeros((num_pages, pb), np.uint8), [[] for _ in ks],
                         [0] * len(ks), order, cache_scale(allk, fmt), cache_scale(allv, fmt))
    for b, (k, v) in enumerate(zip(ks, vs)):
        kc, vc = quantize(k, fmt, cache.s_k), quantize(v, fmt, cache.s_v)
        for t in range(len(k)):
            _take_page_if_full(cache, b)
            _write(cache, b, t, kc[t], vc[t])
            cache.lengths[b] += 1
    return cache


def _take_page_if_full(cache: PagedKVCache, b: int) -> None:
    if cache.lengths[b] == len(cache.tables[b]) * cache.page_tokens:
        if not cache.free:
            raise CacheFull(f"sequence {b} needs a new page and the free list is empty "
                            f"({cache.num_pages} pages)")
        cache.tables[b].append(cache.free.pop(0))


def append(cache: PagedKVCache, k_new, v_new) -> tuple[PagedKVCache, list]:
    """A copy of ``cache`` with one token per sequence appended (``batch x d`` floats,
    quantized with the cache's scales, saturating). Returns the new cache and, per
    sequence, ``(page, slot)`` where the token went."""
    out = cache.copy()
    kc = quantize(k_new, cache.fmt, cache.s_k)
    vc = quantize(v_new, cache.fmt, cache.s_v)
    where = []
    for b in range(len(cache.tables)):
        _take_page_if_full(out, b)
        t = out.lengths[b]
        _write(out, b, t, kc[b], vc[b])
        out.lengths[b] += 1
        where.append((out.tables[b][t // out.page_tokens], t % out.page_tokens))
    return out, where


def reference(cache: PagedKVCache, q: np.ndarray, scale: float | None = None) -> np.ndarray:
    """float64 ``softmax(q_b K_b^T s) V_b`` per sequence over the dequantized cache
    (``q``: batch x d, float; pass the dequantized query to measure the hardware only)."""
    d = cache.head_dim
    s = 1.0 / math.sqrt(d) if scale is None else scale
    out = np.zeros((len(cache.tables), d))
    for b in range(len(cache.tables)):
        kc, vc = gather(cache, b)
        k, v = dequantize(kc, cache.fmt, cache.s_k), dequantize(vc, cache.fmt, cache.s_v)
        if len(k):
            z = (k @ np.asarray(q[b], np.float64)) * s
            p = np.exp(z - z.max())
            out[b] = (p / p.sum()) @ v
    return out


def accuracy(o: np.ndarray, ref: np.ndarray, cache: PagedKVCache) -> dict:
    """Cosine to ``ref`` and RMS / max error relative to max |V| of the cache."""
    vmax = max((float(np.max(np.abs(dequantize(gather(cache, b)[1], cache.fmt, cache.s_v))))
                for b in range(len(cache.tables)) if cache.lengths[b]), default=0.0) or 1.0
    err = np.asarray(o, np.float64) - ref
    return {"cosine": cosine(o, ref), "rms_rel": float(np.sqrt(np.mean(err ** 2)) / vmax),
            "max_rel": float(np.max(np.abs(err)) / vmax)}


# --- the chip program's arithmetic -----------------------------------------------------------
@dataclass
class _Partial:
    m: np.float32
    l: np.float32      # noqa: E741
    o: np.ndarray      # float32 d


def _merge_factor(m_old, m_new) -> np.float32:
    if m_new == -np.inf:
        return f32(1.0)
    return exp_approx(fadd(np.array([m_old], f32), fneg(np.array([m_new], f32))))[0]


def _scores(qc, kc, fmt: str, T: int) -> np.ndarray:
    """One key block's S row (T keys) as the array computes it: INT32 (INT8) or binary32
    summed chunk by chunk in increasing order (FP8)."""
    if fmt == "int8":
        s = kc.view(np.int8).astype(np.int64) @ qc.view(np.int8).astype(np.int64)
        return ((s + 2 ** 31) % 2 ** 32 - 2 ** 31).astype(np.int32)
    acc = None
    for c in range(len(qc) // T):
        part = gemm_fp8(qc[None, c * T:(c + 1) * T], E4M3, kc[:, c * T:(c + 1) * T].T, E4M3,
                        tile_k=T)[0]
        acc = part if acc is None else fp32_add(acc, part)
    return acc.astype(f32)


def _pv(pc, vc, fmt: str, T: int) -> np.ndarray:
    """P (T codes) times the block's V (T x d), one array tile per d chunk."""
    if fmt == "int8":
        s = pc.view(np.int8).astype(np.int64) @ vc.view(np.int8).astype(np.int64)
        return ((s + 2 ** 31) % 2 ** 32 - 2 ** 31).astype(np.int32)
    return np.concatenate([gemm_fp8(pc[None], E4M3, vc[:, c * T:(c + 1) * T], E4M3, tile_k=T)[0]
                           for c in range(vc.shape[1] // T)]).astype(f32)


def _block(qc, kc, vc, valid: int, fmt: str, imm: np.float32, T: int) -> tuple:
    """(m, l, PV) of one key block with its own softmax state (ROWMAX + EXP with
    bscale on a fresh state, PV)."""
    x = _scores(qc, kc, fmt, T)
    a = fmul(i2f(x) if fmt == "int8" else x, np.full(T, imm, f32))
    a = np.where(np.arange(T) >= valid, f32(-np.inf), a).astype(f32)
    mb = row_max(a[None])[0]
    m = fmax(np.array([-np.inf], f32), np.array([mb], f32))[0]
    alpha = _merge_factor(f32(-np.inf), m)
    k = block_scale_k(exp_approx(fadd(np.array([mb], f32), fneg(np.array([m], f32)))))[0]
    e = exp_approx(fadd(a, fneg(np.full(T, m, f32))))
    e = np.where(a == -np.inf, f32(0.0), e).astype(f32)
    e = fmul(e, np.full(T, pow2(k), f32))
    o = fmul(e, np.full(T, P_SCALE[fmt], f32))
    if fmt == "int8":
        words, fmt_id = to_int8(o).astype(np.int32).view(np.uint32), OutFmt.INT8
        codes = to_int8(o).astype(np.int8).view(np.uint8)
    else:
        codes, fmt_id = encode(o, E4M3), OutFmt.E4M3
        words = codes.astype(np.uint32)
    s = fmul(row_sum(dequant_written(fmt_id, words)[None]), np.array([pow2(-k)], f32))[0]
    l = fadd(fmul(np.array([0.0], f32), np.array([alpha], f32)), np.array([s], f32))[0]
    return m, l, _pv(codes, vc, fmt, T)


def _merge(p: _Partial, m_s, l_s, o_s) -> _Partial:
    """STATE_MERGE of (m_s, l_s) into p, then RESCALE with bscale of its O."""
    m_new = fmax(np.array([p.m], f32), np.array([m_s], f32))[0]
    alpha, beta = _merge_factor(p.m, m_new), _merge_factor(m_s, m_new)
    l = fadd(fmul(np.array([p.l], f32), np.array([alpha], f32)),
             fmul(np.array([l_s], f32), np.array([beta], f32)))[0]
    d = len(p.o)
    o = fadd(fmul(p.o, np.full(d, alpha, f32)), fmul(o_s, np.full(d, beta, f32)))
    return _Partial(m_new, l, o)


def _tree(parts: list, s_v: np.float32) -> _Partial:
    """Merge per-block (m, l, PV) in the program's order: level by level, block i with
    block i + ceil(n/2); PV scaled by s_v (as float) at the first level."""
    def scaled(pv):
        return fmul(i2f(pv) if pv.dtype == np.int32 else pv, np.full(len(pv), s_v, f32))
    cur = [_Partial(m, l, scaled(pv)) for m, l, pv in parts]
    while len(cur) > 1:
        h = -(-len(cur) // 2)
        cur = [_merge(cur[i], cur[i + h].m, cur[i + h].l, cur[i + h].o)
               if i + h < len(cur) else cur[i] for i in range(h)]
    return cur[0]


def golden_decode(cache: PagedKVCache, qc: np.ndarray, s_q, groups, scale: float | None = None
                  ) -> np.ndarray:
    """O (batch x d float32) of the chip program's arithmetic.

    Parameters
    ----------
    cache : PagedKVCache
        After the append.
    qc : uint8 (batch x d)
        Query codes; ``s_q`` their per-sequence scales.
    groups : list of list of (first_block, blocks)
        Per sequence, its splits in partial order (``models.compiler_decode``).
    """
    T, d, fmt = cache.tile, cache.head_dim, cache.fmt
    sc = 1.0 / math.sqrt(d) if scale is None else scale
    n_part = max(len(g) for g in groups)
    out = np.zeros((len(groups), d), f32)
    for b, gs in enumerate(groups):
        kc, vc = gather(cache, b, whole_blocks=True)
        imm = f32(f32(s_q[b]) * f32(cache.s_k) * f32(sc))
        acc = _Partial(f32(-np.inf), f32(0.0), np.zeros(d, f32))
        for s in range(n_part):
            if s >= len(gs):                     # an empty partial (m = -inf, l = 0, O = 0)
                acc = _merge(acc, f32(-np.inf), f32(0.0), np.zeros(d, f32))
                continue
            j0, n = gs[s]
            parts = [_block(qc[b], kc[j * T:(j + 1) * T], vc[j * T:(j + 1) * T],
                            min(T, cache.lengths[b] - j * T), fmt, imm, T)
                     for j in range(j0, j0 + n)]
            p = _tree(parts, f32(cache.s_v))
            merged = _merge(acc, p.m, p.l, p.o)
            if s == 0:                                          # COPY: O = O_0
                merged.o = fmul(p.o, np.full(d, f32(1.0), f32))
            acc = merged
        r = recip_approx(np.array([acc.l], f32))[0]
        out[b] = 0.0 if acc.l == 0 else fmul(acc.o, np.full(d, r, f32))
    return out
