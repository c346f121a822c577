"""Host runtime: numpy in, numpy out, on the golden chip model or the SoC RTL.

:func:`gemm` quantizes where needed, plans and compiles the GEMM (``models.compiler``),
writes A, B and the command ring into an HBM image, runs the ring on the chosen backend
and reads C back. Every check that can fail (shapes, formats, fit in SRAM and HBM) runs
before a backend is touched, and names the limit.

Backends:

* ``"model"``: ``models.chip.ChipModel`` (``policy`` and ``seed`` choose the legal
  execution order; every order gives the same result for compiled programs).
* ``"rtl"``: the SoC RTL (block ``soc``) under cocotb (:func:`tb.runner.run`, simulator
  ``sim``, default Verilator): the same HBM image is written through the top's backdoor,
  the ring is started over AXI4-Lite (doorbell = RING_TAIL), the module awaits the
  interrupt and dumps the C region (``tb.soc.runtime_rtl``; image, job and result pass
  as .npy / .json files in a folder under build/runtime_rtl/). :class:`GemmRun` then
  carries the measured ``cycles`` (doorbell -> IRQ) and the simulator run; so does
  :class:`AttentionRun` (the O region is dumped).

Formats: ``"int8"`` (INT8 x INT8 -> INT32, wrapping) and the FP8 formats ``"e4m3"``,
``"e5m2"`` or a pair ``(fmt_a, fmt_w)`` (FP8 x FP8 -> binary32; presets built with
``systolic.fp8``). Integer (``int8``) or uint8 FP8-code inputs are used as they are and
the raw result is returned (int32 / float32); float inputs are quantized per tensor
(INT8: ``scale = max|x| / 127``, round to nearest; FP8: ``scale = max|x| / max_value``,
``models.fp8.encode``, saturating) and the result is dequantized (float64, ``C * s_a *
s_b``). ``scales=(s_a, s_b)`` dequantizes the result of already-quantized inputs.

:func:`attention` runs heads of ``softmax(Q K^T * scale + mask) V`` (float inputs,
quantized per tensor and head by ``models.attention.quantize_head``): by default every
head's query blocks are spread over all tiles and K / V stream from HBM by key group
(``schedule="stream"``, ``models.compiler_attention``); ``schedule="whole"`` runs one
head per tile with K and V resident. The tensor core masks future keys (causal)
and keys past ``kv_len`` (padding on the right); key padding elsewhere (any key masked
for every query) is moved to the right by reordering the keys; :func:`mask_params`
recognizes the rest among boolean masks and rejects any other mask (e.g. causal with
left padding, or an arbitrary pattern) before anything runs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models import attention as _att
from models import compiler as _c
from models import compiler_attention as _ca
from models.chip import ChipModel, ChipResult, write_ring
from models.chip_perf import Roofline, gemm_roofline, stream_roofline
from models.config import JalapenoConfig, get_preset
from models.fp8 import E4M3, E5M2, encode
from models.isa import Command
from models.rtl_backend import SIMS, RtlJob, RtlRun, run_rtl

__all__ = ["BACKENDS", "RunFields", "GemmRun", "PreparedGemm", "prepare_gemm", "gemm", "run_gemm",
           "resolve_config", "AttentionRun", "PreparedAttention", "prepare_attention",
           "attention", "run_attention", "mask_params"]

BACKENDS = ("model", "rtl")
_FP8 = {"e4m3": (0, E4M3), "e5m2": (1, E5M2)}


@dataclass(kw_only=True)
class RunFields:
    """The backend fields every run result ends with (filled by
    ``_Prepared._checked``): ``backend``, and on the RTL ``cycles`` (doorbell -> IRQ),
    ``sim_run``, ``sim_cycles_per_s`` and the ``rtl`` run itself."""

    backend: str = "model"
    cycles: int | None = None
    sim_run: object = None
    sim_cycles_per_s: int | None = None
    rtl: RtlRun | None = None


@dataclass
class GemmRun(RunFields):
    """Everything about one :func:`run_gemm`.

    Attributes
    ----------
    c : numpy.ndarray
        The result (int32, float32, or float64 when dequantized).
    raw : numpy.ndarray
        C as the chip wrote it (uint32 words).
    plan : models.compiler.GemmPlan
    commands : list of models.isa.Command
    result : models.chip.ChipResult
    roofline : models.chip_perf.Roofline
        Of the command stream.
    shape_roofline : models.chip_perf.Roofline
        Of the GEMM shape (any blocking).
    backend : str
    cycles : int or None
        ``backend="rtl"``: clock cycles from the doorbell write to the rising interrupt.
    sim_run : tb.runner.RunResult or None
        ``backend="rtl"``: the simulator run (log, build folder, wall time).
    sim_cycles_per_s : int or None
        ``backend="rtl"``: simulated cycles per wall second while the program ran.
    rtl : models.rtl_backend.RtlRun or None
        ``backend="rtl"``: perf counters over the program and the counter trace.
    """

    c: np.ndarray
    raw: np.ndarray
    plan: _c.GemmPlan
    commands: list[Command]
    result: ChipResult
    roofline: Roofline
    shape_roofline: Roofline


def resolve_config(config) -> JalapenoConfig:
    """A preset name or a JalapenoConfig, checked as a chip."""
    cfg = get_preset(config) if isinstance(config, str) else config
    if not isinstance(cfg, JalapenoConfig):
        raise TypeError(f"config must be a preset name or a JalapenoConfig, got {config!r}")
    return cfg.check_chip()


def _formats(fmt) -> tuple[bool, int, int, tuple]:
    if fmt == "int8":
        return False, 0, 0, (None, None)
    pair = (fmt, fmt) if isinstance(fmt, str) else tuple(fmt)
    if len(pair) != 2 or any(f not in _FP8 for f in pair):
        raise ValueError(f"fmt must be 'int8', 'e4m3', 'e5m2' or a pair of FP8 formats, "
                         f"got {fmt!r}")
    return True, _FP8[pair[0]][0], _FP8[pair[1]][0], (_FP8[pair[0]][1], _FP8[pair[1]][1])


def _operand(name: str, x: np.ndarray, fp8: bool, f) -> tuple[np.ndarray, float | None]:
    """(codes as uint8, scale or None) of one operand."""
    if x.dtype.kind == "f":
        x64 = x.astype(np.float64)
        if not np.all(np.isfinite(x64)):
            raise ValueError(f"{name} has NaN or inf; quantization needs finite values")
        amax = float(np.max(np.abs(x64))) if x.size else 0.0
        if fp8:
            s = amax / f.max_value if amax > 0 else 1.0
            return encode((x64 / s).astype(np.float32), f), s
        s = amax / 127.0 if amax > 0 else 1.0
        return np.clip(np.rint(x64 / s), -127, 127).astype(np.int8).view(np.uint8), s
    if fp8:
        if x.dtype != np.uint8:
            raise TypeError(f"{name}: FP8 operands are float arrays or uint8 codes, got {x.dtype}")
        return x, None
    if x.dtype.kind not in "iu":
        raise TypeError(f"{name}: INT8 operands are integer or float arrays, got {x.dtype}")
    if x.size and (x.min() < -128 or x.max() > 127):
        raise ValueError(f"{name} has values outside INT8 [-128, 127]: "
                         f"min {x.min()}, max {x.max()}")
    return x.astype(np.int8).view(np.uint8), None


class _Prepared:
    """What :class:`PreparedGemm` and :class:`PreparedAttention` share: the config, the
    HBM image with the ring (``entries``), the program (``commands``, at ``ring_addr``)
    and the region a run must read back."""

    what = "program"

    def read_region(self) -> tuple[int, int]:
        raise NotImplementedError

    def rtl_job(self, sample_every: int = 0) -> RtlJob:
        """The RTL backend's job: read back :meth:`read_region`; the wait is bounded by 20x
        the stream's roofline plus 500 cycles per command."""
        bound = stream_roofline(self.cfg, self.commands).bound_cycles
        return RtlJob(self.hbm, self.ring_addr, self.entries, *self.read_region(),
                      int(20 * bound + 500 * len(self.commands) + 10_000), sample_every)

    def run(self, backend: str, *, policy: str = "oldest", seed: int | None = None,
            sim: str = "verilator"):
        """Run on ``backend`` (``policy`` is the model's, ``sim`` the RTL's) and
        :meth:`finish`."""
        if backend == "rtl":
            (r,) = run_rtl(self.cfg, [self.rtl_job()], sim=sim, seed=seed)
            return self.finish(r.result, backend, r)
        chip = ChipModel(self.cfg, self.hbm, policy=policy, seed=seed)
        return self.finish(chip.run_ring(self.ring_addr, self.entries, 0, self.entries - 1),
                           backend)

    def _checked(self, res: ChipResult, rtl: RtlRun | None) -> dict:
        """Raise unless the run ended with the program's IRQ and every command completed;
        the run's RTL fields (``cycles``, ``sim_run``, ``sim_cycles_per_s``, ``rtl``)."""
        n = len(self.commands)
        if not res.ok or res.irqs != [_c.IRQ_DONE] or res.completed != n:
            where = (f"on the SoC RTL ({rtl.sim_run.sim}; log {rtl.sim_run.log_file})"
                     if rtl else "on the chip model")
            raise RuntimeError(f"the {self.what} program failed {where}: {res.error!r} at "
                               f"{res.error_addr}, {res.completed}/{n} completed")
        if rtl is None:
            return {}
        return {"cycles": rtl.cycles, "sim_run": rtl.sim_run,
                "sim_cycles_per_s": rtl.sim_cycles_per_s, "rtl": rtl}


@dataclass
class PreparedGemm(_Prepared):
    """A compiled GEMM and its HBM image, before any backend ran it
    (:func:`prepare_gemm`)."""

    cfg: JalapenoConfig
    plan: _c.GemmPlan
    commands: list[Command]
    hbm: np.ndarray
    entries: int
    fp8: bool
    scales: tuple

    what = "GEMM"

    @property
    def ring_addr(self) -> int:
        return self.plan.ring_addr

    def read_region(self) -> tuple[int, int]:
        """C."""
        return self.plan.c_addr, self.plan.c_bytes

    def finish(self, res: ChipResult, backend: str, rtl: RtlRun | None = None) -> GemmRun:
        """Check the run (:meth:`_checked`) and read C."""
        extra = self._checked(res, rtl)
        plan, cmds = self.plan, self.commands
        raw = _c.unpack_c(plan, res.hbm)
        c = raw.view(np.float32) if self.fp8 else raw.view(np.int32)
        sa, sb = self.scales
        if sa is not None:
            c = c.astype(np.float64) * sa * sb
        return GemmRun(c, raw, plan, cmds, res, stream_roofline(self.cfg, cmds),
                       gemm_roofline(self.cfg, plan.m, plan.k, plan.n), backend=backend,
                       **extra)


def prepare_gemm(a, b, *, config="default", fmt="int8", scales=None,
                 **plan_kw) -> PreparedGemm:
    """Check, quantize, plan and compile ``a @ b`` and build its HBM image (A, B, ring);
    every error :func:`gemm` documents is raised here, before any backend."""
    cfg = resolve_config(config)
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"a and b must be 2-D, got shapes {a.shape} and {b.shape}")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"a is {a.shape[0]}x{a.shape[1]}, b is {b.shape[0]}x{b.shape[1]}: "
                         f"inner dimensions {a.shape[1]} != {b.shape[0]}")
    fp8, fa, fw, (ffa, ffw) = _formats(fmt)
    (ac, sa), (bc, sb) = _operand("a", a, fp8, ffa), _operand("b", b, fp8, ffw)
    if scales is not None:
        if sa is not None or sb is not None:
            raise ValueError("scales are for already-quantized inputs; float inputs get "
                             "their own")
        sa, sb = (float(s) for s in scales)
    m, k = a.shape
    n = b.shape[1]
    plan = _c.plan_gemm(cfg, m, k, n, fp8=fp8, fmt_a=fa, fmt_w=fw, **plan_kw)
    cmds = _c.gemm_program(plan)
    hbm = np.zeros(cfg.hbm.total_bytes, np.uint8)
    hbm[plan.a_addr:plan.a_addr + plan.a_bytes] = _c.pack_a(plan, ac)
    hbm[plan.b_addr:plan.b_addr + plan.b_bytes] = _c.pack_b(plan, bc)
    entries = write_ring(hbm, plan.ring_addr, cmds) + 1
    return PreparedGemm(cfg, plan, cmds, hbm, entries, fp8, (sa, sb))


def run_gemm(a, b, *, config="default", fmt="int8", scales=None, backend: str = "model",
             policy: str = "oldest", seed: int | None = None, sim: str = "verilator",
             **plan_kw) -> GemmRun:
    """:func:`gemm` with everything it produced (:class:`GemmRun`); ``plan_kw`` go to
    :func:`models.compiler.plan_gemm` (``mb``, ``g``, ``kb``, ``slots``); ``sim``
    (``"verilator"`` or ``"icarus"``) and ``seed`` are the RTL backend's."""
    _check_backend(backend, sim)
    p = prepare_gemm(a, b, config=config, fmt=fmt, scales=scales, **plan_kw)
    return p.run(backend, policy=policy, seed=seed, sim=sim)


def _check_backend(backend: str, sim: str) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "rtl" and sim not in SIMS:
        raise ValueError(f"sim must be 'verilator' or 'icarus', got {sim!r}")


def gemm(a, b, *, config="default", fmt="int8", scales=None, backend: str = "model",
         policy: str = "oldest", seed: int | None = None,
         sim: str = "verilator") -> np.ndarray:
    """``C = A @ B`` on the chip (module docstring for formats and backends).

    Parameters
    ----------
    a, b : array_like
        ``M x K`` and ``K x N``: int8-range integers, uint8 FP8 codes, or floats.
    config : str or JalapenoConfig
        Preset name or a chip configuration.
    fmt : str or tuple
        ``"int8"``, ``"e4m3"``, ``"e5m2"`` or ``(fmt_a, fmt_w)``.
    scales : (float, float), optional
        Dequantize the result of quantized inputs by ``s_a * s_b``.
    backend : str
        ``"model"`` or ``"rtl"`` (the SoC RTL under cocotb; module docstring).
    sim : str
        ``"verilator"`` (default) or ``"icarus"``, for ``backend="rtl"``.

    Raises
    ------
    ValueError, TypeError
        Bad shapes, formats or values.
    models.compiler.FitError
        The GEMM does not fit (the message names the limit); raised before any backend
        runs.
    RuntimeError
        The program failed (error register / no interrupt / RTL run failed).
    """
    return run_gemm(a, b, config=config, fmt=fmt, scales=scales, backend=backend,
                    policy=policy, seed=seed, sim=sim).c


# --- attention ------------------------------------------------------------------------------
@dataclass
class AttentionRun(RunFields):
    """Everything about one :func:`run_attention`: ``o`` (float32, like q), the quantized
    heads, the placed job (``models.compiler_attention.AttentionJob``), the chip result
    and the stream's roofline; ``backend``, ``cycles``, ``sim_run``,
    ``sim_cycles_per_s`` and ``rtl`` as :class:`GemmRun`."""

    o: np.ndarray
    heads: list
    job: _ca.AttentionJob
    result: ChipResult
    roofline: Roofline


def mask_params(mask, seq_q: int, seq_k: int) -> tuple[bool, int | None]:
    """``(causal, kv_len)`` of a mask: None, ``"causal"``, or a boolean ``seq_q x seq_k``
    array, True where a key is masked. Raises NotImplementedError for a mask that is not
    causal and/or right key padding (the tensor core masks nothing else)."""
    if mask is None:
        return False, None
    if isinstance(mask, str):
        if mask != "causal":
            raise ValueError(f"mask must be None, 'causal' or a boolean array, got {mask!r}")
        return True, None
    m = np.asarray(mask)
    if m.dtype != bool or m.shape != (seq_q, seq_k):
        raise ValueError(f"a mask array must be boolean {seq_q}x{seq_k} (True = masked), "
                         f"got {m.dtype} {m.shape}")
    cols = np.all(m, axis=0)
    kv = seq_k - (int(np.argmin(cols[::-1])) if not cols.all() else seq_k)
    for causal, kv_len in ((False, None), (True, None), (False, kv), (True, kv)):
        p = _att.AttentionProblem(seq_q, seq_k, 1, causal=causal, kv_len=kv_len)
        if np.array_equal(_att.mask(p), m):         # the simplest description first
            return causal, (None if kv_len == seq_k else kv_len)
    raise NotImplementedError("the tensor core masks future keys (causal) and keys past "
                              "kv_len (right padding) only; this mask is neither")


@dataclass
class PreparedAttention(_Prepared):
    """Quantized heads placed on the chip, their program and HBM image
    (:func:`prepare_attention`)."""

    cfg: JalapenoConfig
    heads: list
    job: _ca.AttentionJob
    hbm: np.ndarray
    entries: int
    single: bool

    what = "attention"

    @property
    def commands(self) -> list[Command]:
        return self.job.commands

    @property
    def ring_addr(self) -> int:
        return self.job.ring_addr

    def read_region(self) -> tuple[int, int]:
        """O of every head (it lies just below the ring)."""
        o_lo = min(hp.o_addr for hp in self.job.heads)
        return o_lo, self.job.ring_addr - o_lo

    def finish(self, res: ChipResult, backend: str,
               rtl: RtlRun | None = None) -> AttentionRun:
        """Check the run (:meth:`_checked`) and read O."""
        extra = self._checked(res, rtl)
        o = np.stack(_ca.read_outputs(self.job, res.hbm))
        return AttentionRun(o[0] if self.single else o, self.heads, self.job, res,
                            stream_roofline(self.cfg, self.commands), backend=backend,
                            **extra)


def prepare_attention(q, k, v, mask=None, *, config="tiny", path: str = "int8",
                      scale: float | None = None, schedule: str = "stream",
                      **stream_kw) -> PreparedAttention:
    """Check and quantize the heads, place them and build the HBM image; every error
    :func:`attention` documents is raised here, before any backend. ``schedule`` and
    ``stream_kw`` (``mq``, ``g``, ``nb``, ``indep``) go to
    ``models.compiler_attention.plan_attention``."""
    cfg = resolve_config(config)
    q, k, v = (np.asarray(x, np.float64) for x in (q, k, v))
    single = q.ndim == 2
    if single:
        q, k, v = q[None], k[None], v[None]
    if q.ndim != 3 or k.shape != v.shape or k.ndim != 3 or q.shape[0] != k.shape[0] or \
            q.shape[2] != k.shape[2]:
        raise ValueError(f"q must be [H,] Sq x d and k, v [H,] Sk x d, got {q.shape}, "
                         f"{k.shape}, {v.shape}")
    n, sq, d = q.shape
    sk = k.shape[1]
    masks = mask if (isinstance(mask, np.ndarray) and mask.ndim == 3) else [mask] * n
    heads = []
    for h in range(n):
        kh, vh, mh = _keys_first(masks[h], k[h], v[h])
        causal, kv_len = mask_params(mh, sq, sk)
        prob = _att.AttentionProblem(sq, sk, d, path=path, causal=causal, kv_len=kv_len,
                                     scale=scale)
        heads.append(_att.quantize_head(prob, q[h], kh, vh))
    job = _ca.plan_attention(cfg, heads, schedule=schedule, **stream_kw)
    hbm = np.zeros(cfg.hbm.total_bytes, np.uint8)
    _ca.pack_heads(job, hbm)
    entries = write_ring(hbm, job.ring_addr, job.commands) + 1
    return PreparedAttention(cfg, heads, job, hbm, entries, single)


def _keys_first(mask, k: np.ndarray, v: np.ndarray):
    """Key padding anywhere (a boolean mask whose every column is all masked or all
    unmasked: left, right or scattered padding) becomes right padding: the live keys and
    their values move first, in order. Softmax attention does not depend on the order of
    the keys, so O is the same up to rounding (the golden model runs the reordered head
    too, so the RTL still matches it bit for bit). Other masks pass unchanged."""
    if not isinstance(mask, np.ndarray) or mask.dtype != bool or mask.ndim != 2 \
            or mask.shape[1] != k.shape[0]:
        return k, v, mask
    cols = mask[0]
    if not np.array_equal(mask, np.broadcast_to(cols, mask.shape)):
        return k, v, mask
    order = np.concatenate([np.flatnonzero(~cols), np.flatnonzero(cols)])
    return k[order], v[order], mask[:, order]


def run_attention(q, k, v, mask=None, *, config="tiny", path: str = "int8",
                  scale: float | None = None, backend: str = "model", policy: str = "oldest",
                  seed: int | None = None, sim: str = "verilator", schedule: str = "stream",
                  **stream_kw) -> AttentionRun:
    """:func:`attention` with everything it produced; ``sim`` and ``seed`` are the RTL
    backend's (as :func:`run_gemm`), ``schedule`` and ``stream_kw`` as
    :func:`prepare_attention`."""
    _check_backend(backend, sim)
    p = prepare_attention(q, k, v, mask, config=config, path=path, scale=scale,
                          schedule=schedule, **stream_kw)
    return p.run(backend, policy=policy, seed=seed, sim=sim)


def attention(q, k, v, mask=None, *, config="tiny", path: str = "int8",
              scale: float | None = None, backend: str = "model", policy: str = "oldest",
              seed: int | None = None, sim: str = "verilator",
              schedule: str = "stream") -> np.ndarray:
    """``softmax(Q K^T * scale + mask) V`` on the chip, per head.

    Parameters
    ----------
    q, k, v : array_like
        ``Sq x d``, ``Sk x d``, ``Sk x d`` floats, or with a leading head axis H.
    mask : None, "causal" or bool array
        ``Sq x Sk`` (or ``H x Sq x Sk``), True where a key is masked: causal, key
        padding on either side or anywhere (reordered to the right), or causal with
        right padding (:func:`mask_params`).
    path : str
        ``"int8"`` or ``"fp8"`` (E4M3 operands; presets with ``systolic.fp8``).
    scale : float, optional
        Softmax scale (default ``1/sqrt(d)``).
    backend, sim, policy, seed
        As :func:`gemm`.
    schedule : str
        ``"stream"`` (default: query blocks over all tiles, K and V streamed from HBM by
        key group, so any length whose operands, O and ring fit HBM) or ``"whole"``
        (one head per tile, K and V resident: short heads only).

    Returns float32 O like q. Fully masked rows are 0. Errors as :func:`gemm`.
    """
    return run_attention(q, k, v, mask, config=config, path=path, scale=scale,
                         backend=backend, policy=policy, seed=seed, sim=sim,
                         schedule=schedule).o



# Decode (paged KV cache, flash-decoding on the chip) lives in models/runtime_decode.py,
# which builds on this module; its entry points are also reachable from here (loaded on
# first use, so importing either module first works).
_DECODE = ("DecodeRun", "PreparedDecode", "prepare_decode", "run_decode", "decode")
__all__ += list(_DECODE)


def __getattr__(name: str):
    if name in _DECODE:
        from models import runtime_decode
        return getattr(runtime_decode, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
