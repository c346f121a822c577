"""Host runtime for decode: one step of a batch against a paged KV cache, float in and out.

:func:`decode` quantizes each query (per sequence) and the new K/V (the cache's scales,
saturating: ``models.decode``), does the page bookkeeping of the append (a new page from
the free list for a sequence whose last page is full), compiles the step
(``models.compiler_decode``: the chip writes the new tokens into their pages, then
flash-decoding over the tiles and the combine), builds the HBM image and runs it on the
golden chip model or the SoC RTL. It returns O (batch x d float32) and the updated cache,
whose pages are read back from the HBM image the backend left.

Every check runs in :func:`prepare_decode` before a backend is touched: shapes, NaN,
format, the cache's tile / page size against the chip, SRAM (FitError from the
compiler), the free list (``models.decode.CacheFull``) and HBM (FitError naming
``hbm.total_bytes``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models import compiler_decode as cd
from models import decode as dec
from models.chip import ChipResult, write_ring
from models.chip_perf import Roofline, stream_roofline
from models.compiler import FitError
from models.runtime import RunFields, _check_backend, _Prepared, resolve_config
from models.rtl_backend import RtlRun

__all__ = ["DecodeRun", "PreparedDecode", "prepare_decode", "run_decode", "decode"]


@dataclass
class DecodeRun(RunFields):
    """One step: ``o`` (batch x d float32), the updated ``cache``, the plan (splits,
    addresses, commands), query codes and scales, the chip result, the stream's roofline;
    ``backend``, ``cycles``, ``sim_run``, ``sim_cycles_per_s`` and ``rtl`` as
    ``models.runtime.GemmRun``."""

    o: np.ndarray
    cache: dec.PagedKVCache
    plan: cd.DecodePlan
    qc: np.ndarray
    s_q: list
    result: ChipResult
    roofline: Roofline


@dataclass
class PreparedDecode(_Prepared):
    """A compiled step and its HBM image (:func:`prepare_decode`); ``expected`` is the
    cache after the append as the host computes it."""

    cfg: object
    plan: cd.DecodePlan
    hbm: np.ndarray
    entries: int
    expected: dec.PagedKVCache
    qc: np.ndarray
    s_q: list
    read_cache: bool = True

    what = "decode"

    @property
    def commands(self):
        return self.plan.commands

    @property
    def ring_addr(self) -> int:
        return self.plan.addr["ring"]

    def read_region(self) -> tuple[int, int]:
        """Everything below the ring (pools, partials, O), or from the partials on
        (``read_cache=False``: a large cache is not dumped; the pools then come from the
        host's append)."""
        lo = 0 if self.read_cache else self.plan.addr["part"]
        return lo, self.ring_addr - lo

    def finish(self, res: ChipResult, backend: str, rtl: RtlRun | None = None) -> DecodeRun:
        """Check the run, read O and the pools."""
        extra = self._checked(res, rtl)
        cache = self.expected.copy()
        if self.read_cache:
            cache.k_pages, cache.v_pages = cd.read_pools(self.plan, res.hbm)
        return DecodeRun(cd.read_output(self.plan, res.hbm), cache, self.plan, self.qc,
                         self.s_q, res, stream_roofline(self.cfg, self.commands),
                         backend=backend, **extra)


def _floats(name: str, x, shape) -> np.ndarray:
    a = np.asarray(x, np.float64)
    if a.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} has NaN or inf")
    return a


def prepare_decode(q, k_new, v_new, cache: dec.PagedKVCache, *, config="tiny",
                   scale: float | None = None, max_blocks: int | None = None,
                   read_cache: bool = True, overlap: bool = False) -> PreparedDecode:
    """Every check, the append's bookkeeping, the compile and the HBM image (module
    docstring); ``max_blocks`` caps the key blocks of a split (tests); ``overlap``:
    ``models.compiler_decode.plan_decode``'s (same results, ``indep`` commands)."""
    cfg = resolve_config(config)
    if not isinstance(cache, dec.PagedKVCache):
        raise TypeError(f"cache must be a models.decode.PagedKVCache, got {type(cache)}")
    b, d = len(cache.tables), cache.head_dim
    q = _floats("q", q, (b, d))
    kn, vn = _floats("k_new", k_new, (b, d)), _floats("v_new", v_new, (b, d))
    s_q = [dec.cache_scale(q[i], cache.fmt) for i in range(b)]
    qc = np.stack([dec.quantize(q[i], cache.fmt, s_q[i]) for i in range(b)])
    after, slots = dec.append(cache, kn, vn)
    plan = cd.plan_decode(cfg, after, slots, max_blocks=max_blocks, overlap=overlap)
    sc = dec.DecodeProblem(1, d, (0,), cache.page_tokens, cache.fmt, scale).softmax_scale
    imms = [float(np.float32(s_q[i]) * np.float32(cache.s_k) * np.float32(sc))
            for i in range(b)]
    plan.commands = cd.decode_program(plan, imms, float(np.float32(cache.s_v)))
    if plan.hbm_bytes > cfg.hbm.total_bytes:
        raise FitError(f"the decode step does not fit preset {cfg.name!r}: it needs "
                       f"{plan.hbm_bytes} bytes of HBM (KV pools {2 * cache.num_pages} "
                       f"pages of {cache.page_bytes} bytes, query, staging, partials, "
                       f"ring), hbm.total_bytes is {cfg.hbm.total_bytes}")
    hbm = np.zeros(cfg.hbm.total_bytes, np.uint8)
    kc = np.stack([dec.quantize(kn[i], cache.fmt, cache.s_k) for i in range(b)])
    vc = np.stack([dec.quantize(vn[i], cache.fmt, cache.s_v) for i in range(b)])
    cd.pack_hbm(plan, cache, qc, kc, vc, hbm)
    entries = write_ring(hbm, plan.addr["ring"], plan.commands) + 1
    return PreparedDecode(cfg, plan, hbm, entries, after, qc, s_q, read_cache)


def run_decode(q, k_new, v_new, cache, *, config="tiny", scale=None, backend: str = "model",
               policy: str = "oldest", seed: int | None = None, sim: str = "verilator",
               max_blocks: int | None = None, overlap: bool = False) -> DecodeRun:
    """:func:`decode` with everything it produced."""
    _check_backend(backend, sim)
    p = prepare_decode(q, k_new, v_new, cache, config=config, scale=scale,
                       max_blocks=max_blocks, overlap=overlap)
    return p.run(backend, policy=policy, seed=seed, sim=sim)


def decode(q, k_new, v_new, cache, *, config="tiny", scale=None, backend: str = "model",
           sim: str = "verilator", seed: int | None = None):
    """One decode step on the chip.

    Parameters
    ----------
    q, k_new, v_new : array_like
        ``batch x d`` floats: each sequence's query and its new key / value.
    cache : models.decode.PagedKVCache
        Built for the chip's array size (``tile``); not modified.
    config : str or JalapenoConfig
    scale : float, optional
        Softmax scale (default ``1/sqrt(d)``).
    backend, sim, seed
        ``"model"`` (golden chip model) or ``"rtl"`` (SoC RTL on ``sim``).

    Returns
    -------
    o : numpy.ndarray
        ``batch x d`` float32.
    cache : models.decode.PagedKVCache
        The cache with the new tokens.
    """
    r = run_decode(q, k_new, v_new, cache, config=config, scale=scale, backend=backend,
                   sim=sim, seed=seed)
    return r.o, r.cache
