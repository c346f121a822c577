"""FlashAttention-2-style attention head as a tensor-core program, and its references.

One head computes ``O = softmax(Q K^T * scale + mask) V`` for ``Q`` (Sq x d), ``K``, ``V``
(Sk x d), quantized per tensor to INT8 (symmetric, with scales) or FP8 E4M3 (with
scales). The computation is a list of :class:`models.tensor_cmd.TensorCmd` that a
tensor core runs (:func:`program`); the golden model is that same list executed by
``models.tensor_core.TensorCoreModel`` (bit-exact to the RTL), and the float64
reference (:func:`reference`) is the exact softmax attention of the *same quantized*
inputs, so the accuracy figures measure the hardware's arithmetic only.

Algorithm (per query block of ``mq`` rows; key blocks of C keys; d in chunks of R)::

    STATE_INIT                            m = -inf, l = 0, alpha = 1     (per query row)
    for each key block j (causal: blocks entirely above the diagonal are skipped):
        S  = Q K_j^T                      MATMUL x d/R, accumulating over d
        ROWMAX(S * s_score, masked)       m_new = max(m, rowmax); alpha = exp(m - m_new);
                                          block scale k: the block's largest p times 2^k
                                          is in [0.5, 1]; beta = 2^-k
        P  = EXP(S * s_score - m_new)     p * 2^k quantized into the activation SRAM;
                                          l = l * alpha + beta * rowsum(P as stored)
        PV = P V_j                        MATMUL per C-column chunk of d
        O  = O * alpha + PV * s_v * beta  RESCALE (COPY for the first block: k = 0)
    O = O * recip(l)                      NORM (rows with l == 0, i.e. fully masked: 0)

``s_score = s_q * s_k * scale`` is folded into the vector unit's input scale. P is
stored as INT8 ``round(127 p 2^k)`` or as E4M3 ``encode(256 p 2^k)`` (x256 keeps small
p out of E4M3's subnormal range); l sums exactly the stored values times ``2^-k``
(exact), so the factors cancel in ``O / l``. The per-row, per-key-block scale ``2^k``
(``bscale``, models/vector.py) keeps every key block's probabilities in the upper half
of the INT8 range however far its scores are below the running max: relative to the
running max alone, ``round(127 p)`` flushes every p < 1/254 to zero, which loses
several percent of a diffuse row's mass (docs/attention.md, "Precision of P"). The array must be square (R == C): a row of S (C keys) becomes one
activation vector (R lanes) of the P V matmul.

SRAM layout (word addresses; T = R = C, nd = d / T, nkb = ceil(Sk / C))::

    act:    Q rows (c * Sq + i) for chunk c, query i    | P rows (mq)
    weight: K^T tiles (j * nd + c) * T                  | V tiles (j * nd + c) * T
    acc:    S (mq rows) | PV (nd * mq rows) | O (nd * Sq rows: chunk c, query i)
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from models.config import JalapenoConfig
from models.fp8 import E4M3, decode, encode
from models.tensor_cmd import OutFmt, TensorCmd, VecOp

__all__ = ["AttentionProblem", "QuantizedHead", "AttentionPlan", "quantize_head",
           "random_head", "reference", "plan", "sram_images", "program", "output",
           "output_rows", "run_model", "array_shape", "accuracy", "cosine", "macs", "P_SCALE", "PATHS"]

PATHS = ("int8", "fp8")
#: Scale applied to p in [0, 1] before it is stored as an array operand.
P_SCALE = {"int8": 127.0, "fp8": 256.0}
_MEM_ACT, _MEM_WEIGHT = 0, 1


@dataclass(frozen=True)
class AttentionProblem:
    """Shape and masking of one attention head.

    Parameters
    ----------
    seq_q, seq_k : int
        Query and key/value sequence lengths (>= 1).
    head_dim : int
        d, a multiple of the array size.
    path : str
        ``"int8"`` or ``"fp8"`` (E4M3 operands).
    causal : bool
        Key k is masked for query i when k > i.
    kv_len : int or None
        Key-padding mask: keys >= kv_len are masked (None: all seq_k keys valid).
    scale : float or None
        Softmax scale (None: 1/sqrt(d)).
    """

    seq_q: int
    seq_k: int
    head_dim: int
    path: str = "int8"
    causal: bool = False
    kv_len: int | None = None
    scale: float | None = None

    def __post_init__(self):
        if self.path not in PATHS:
            raise ValueError(f"AttentionProblem.path must be one of {PATHS}, got {self.path!r}")
        for name in ("seq_q", "seq_k", "head_dim"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"AttentionProblem.{name} must be an int >= 1, got {v!r}")
        if self.kv_len is not None and not 0 <= self.kv_len <= self.seq_k:
            raise ValueError(f"AttentionProblem.kv_len must be in [0, seq_k={self.seq_k}], "
                             f"got {self.kv_len}")

    @property
    def softmax_scale(self) -> float:
        return 1.0 / math.sqrt(self.head_dim) if self.scale is None else self.scale

    @property
    def valid_keys(self) -> int:
        return self.seq_k if self.kv_len is None else self.kv_len


@dataclass(frozen=True)
class QuantizedHead:
    """Quantized Q, K, V: codes (int8 values or E4M3 codes, as uint8) and float scales."""

    problem: AttentionProblem
    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    s_q: float
    s_k: float
    s_v: float

    def dequantized(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """float64 values of Q, K, V (what the reference attends over)."""
        def deq(codes, s):
            if self.problem.path == "int8":
                return codes.view(np.int8).astype(np.float64) * s
            return decode(codes, E4M3).astype(np.float64) * s
        return deq(self.q, self.s_q), deq(self.k, self.s_k), deq(self.v, self.s_v)


def _quantize(x: np.ndarray, path: str, valid: int | None = None) -> tuple[np.ndarray, float]:
    """Codes and scale of ``x``; the scale comes from the first ``valid`` rows only (the
    unmasked keys: padding rows must not stretch the scale), the rest saturate."""
    x = np.asarray(x, dtype=np.float64)
    live = x if valid is None else x[:valid]
    amax = float(np.max(np.abs(live))) if live.size else 0.0
    if path == "int8":
        s = amax / 127.0 if amax > 0 else 1.0
        q = np.clip(np.rint(x / s), -127, 127).astype(np.int8)
        return q.view(np.uint8), float(np.float32(s))
    s = amax / E4M3.max_value if amax > 0 else 1.0
    return encode((x / s).astype(np.float32), E4M3), float(np.float32(s))


def quantize_head(problem: AttentionProblem, q, k, v) -> QuantizedHead:
    """Per-tensor symmetric quantization (scale = max|x| / 127 or / 448).

    K and V scales are computed over the valid keys only (``kv_len``): masked padding
    rows may hold anything and are clipped to the valid rows' range.
    """
    shapes = {"q": (problem.seq_q, problem.head_dim), "k": (problem.seq_k, problem.head_dim),
              "v": (problem.seq_k, problem.head_dim)}
    for name, x in (("q", q), ("k", k), ("v", v)):
        if np.shape(x) != shapes[name]:
            raise ValueError(f"{name} must have shape {shapes[name]}, got {np.shape(x)}")
    qc, sq = _quantize(q, problem.path)
    kc, sk = _quantize(k, problem.path, problem.valid_keys)
    vc, sv = _quantize(v, problem.path, problem.valid_keys)
    return QuantizedHead(problem, qc, kc, vc, sq, sk, sv)


def random_head(problem: AttentionProblem, rng: np.random.Generator,
                logit_std: float = 1.0) -> QuantizedHead:
    """Gaussian Q, K, V; ``logit_std`` sets the spread of the scaled scores."""
    d = problem.head_dim
    # q.k over d terms of unit variance has std sqrt(d); scale * sqrt(d) = 1 by default.
    qstd = logit_std / math.sqrt(problem.softmax_scale * math.sqrt(d))
    q = rng.standard_normal((problem.seq_q, d)) * qstd
    k = rng.standard_normal((problem.seq_k, d)) * qstd
    v = rng.standard_normal((problem.seq_k, d))
    return quantize_head(problem, q, k, v)


def mask(problem: AttentionProblem) -> np.ndarray:
    """Boolean (Sq x Sk) array, True where a key is masked."""
    qi = np.arange(problem.seq_q)[:, None]
    kj = np.arange(problem.seq_k)[None, :]
    masked = kj >= problem.valid_keys
    if problem.causal:
        masked = masked | (kj > qi)
    return np.broadcast_to(masked, (problem.seq_q, problem.seq_k))


def reference(head: QuantizedHead) -> np.ndarray:
    """float64 ``softmax(Q K^T * scale + mask) V`` of the dequantized inputs.

    Fully masked rows are 0 (the hardware's defined output).
    """
    p = head.problem
    q, k, v = head.dequantized()
    s = (q @ k.T) * p.softmax_scale
    masked = mask(p)
    s = np.where(masked, -np.inf, s)
    out = np.zeros((p.seq_q, p.head_dim))
    live = ~np.all(masked, axis=1)
    if np.any(live):
        sl = s[live]
        e = np.exp(sl - np.max(sl, axis=1, keepdims=True))
        out[live] = (e / np.sum(e, axis=1, keepdims=True)) @ v
    return out


@dataclass(frozen=True)
class AttentionPlan:
    """Block sizes and SRAM addresses of one head on one configuration (see module doc)."""

    problem: AttentionProblem
    tile: int               # T = R = C
    nd: int                 # d / T
    nkb: int                # key blocks
    mq: int                 # query block rows
    q_act: int
    p_act: int
    k_w: int
    v_w: int
    s_acc: int
    pv_acc: int
    o_acc: int


def array_shape(config: JalapenoConfig, problem: AttentionProblem) -> tuple[int, int, int]:
    """``(T, nd, nkb)``: array size, d / T and key blocks; ``ValueError`` when the array
    cannot run the head (not square, no FP8 datapath for the FP8 path, d not a multiple
    of T). Shared by every attention planner."""
    sa = config.systolic
    if sa.rows != sa.cols:
        raise ValueError(f"attention needs a square array (P rows become activation "
                         f"vectors), got {sa.rows}x{sa.cols}")
    if problem.path == "fp8" and not sa.fp8:
        raise ValueError(f"preset {config.name!r} has no FP8 datapath (systolic.fp8=False)")
    t = sa.rows
    if problem.head_dim % t:
        raise ValueError(f"head_dim {problem.head_dim} must be a multiple of the array size {t}")
    return t, problem.head_dim // t, -(-problem.seq_k // t)


def plan(config: JalapenoConfig, problem: AttentionProblem, mq: int | None = None) -> AttentionPlan:
    """Choose the query block and place every operand; ``ValueError`` if it does not fit.

    ``mq`` defaults to the largest multiple of T (or all of Sq) that fits the
    accumulator SRAM.
    """
    tc = config.tensor
    t, nd, nkb = array_shape(config, problem)
    sq = problem.seq_q
    w_rows = 2 * nkb * nd * t
    if w_rows > tc.weight_rows:
        raise ValueError(f"K and V need {w_rows} weight rows, the weight SRAM has "
                         f"{tc.weight_rows} (seq_k {problem.seq_k}, d {problem.head_dim})")
    acc_free = tc.acc_rows - nd * sq
    act_free = tc.act_rows - nd * sq
    fit = min(acc_free // (1 + nd), act_free)
    if mq is None:
        mq = sq if fit >= sq else (fit // t) * t
    if mq < 1 or mq > min(fit, sq):
        raise ValueError(f"no query block fits: Q and O need {nd * sq} rows of the "
                         f"activation/accumulator SRAMs ({tc.act_rows}/{tc.acc_rows}), "
                         f"query block {mq}, room for {fit}")
    return AttentionPlan(problem, t, nd, nkb, mq, q_act=0, p_act=nd * sq, k_w=0,
                         v_w=nkb * nd * t, s_acc=0, pv_acc=mq, o_acc=mq + nd * mq)


def sram_images(pl: AttentionPlan, head: QuantizedHead) -> list[tuple[int, int, np.ndarray]]:
    """``(mem, addr, rows)`` writes that load Q, K^T and V (uint8 rows) into the SRAMs.

    ``mem`` is 0 (activation) or 1 (weight); padding keys are zero codes.
    """
    p, t, nd = pl.problem, pl.tile, pl.nd
    sk_pad = pl.nkb * t
    k = np.zeros((sk_pad, p.head_dim), np.uint8)
    v = np.zeros((sk_pad, p.head_dim), np.uint8)
    k[:p.seq_k], v[:p.seq_k] = head.k, head.v
    # act row c * Sq + i = Q[i, c*T:(c+1)*T]
    q_rows = head.q.reshape(p.seq_q, nd, t).transpose(1, 0, 2).reshape(nd * p.seq_q, t)
    # K^T tile (j, c), row r: K[j*T + col, c*T + r] over col
    kt = k.reshape(pl.nkb, t, nd, t).transpose(0, 2, 3, 1).reshape(pl.nkb * nd * t, t)
    # V tile (j, c), row r: V[j*T + r, c*T + col] over col
    vt = v.reshape(pl.nkb, t, nd, t).transpose(0, 2, 1, 3).reshape(pl.nkb * nd * t, t)
    return [(_MEM_ACT, pl.q_act, np.ascontiguousarray(q_rows)),
            (_MEM_WEIGHT, pl.k_w, np.ascontiguousarray(kt)),
            (_MEM_WEIGHT, pl.v_w, np.ascontiguousarray(vt))]


def program(pl: AttentionPlan, head: QuantizedHead) -> list[TensorCmd]:
    """The command list of the head (module docstring), in execution order."""
    p, t, nd = pl.problem, pl.tile, pl.nd
    fp8 = p.path == "fp8"
    s_score = float(np.float32(head.s_q) * np.float32(head.s_k) * np.float32(p.softmax_scale))
    pad = p.valid_keys < pl.nkb * t
    cmds: list[TensorCmd] = []
    V = TensorCmd.vector
    for q0 in range(0, p.seq_q, pl.mq):
        mq = min(pl.mq, p.seq_q - q0)
        masks = dict(causal=int(p.causal), pad=int(pad), q_base=q0, kv_len=p.valid_keys)
        cmds.append(V(VecOp.STATE_INIT, count=mq, state=0))
        first = True
        for j in range(pl.nkb):
            if p.causal and j * t > q0 + mq - 1:
                break                        # every key of this block is in the future
            for c in range(nd):
                cmds.append(TensorCmd.matmul(src=pl.q_act + c * p.seq_q + q0,
                                             w=pl.k_w + (j * nd + c) * t, dst=pl.s_acc,
                                             m=mq, accumulate=c > 0, fp8=fp8))
            score = dict(src=pl.s_acc, count=mq, state=0, in_int=int(not fp8),
                         imm=s_score, k_base=j * t, bscale=1, **masks)
            cmds.append(V(VecOp.ROWMAX, **score))
            cmds.append(V(VecOp.EXP, dst=pl.p_act, dst_act=1,
                          out_fmt=OutFmt.E4M3 if fp8 else OutFmt.INT8,
                          imm2=P_SCALE[p.path], **score))
            for c in range(nd):
                cmds.append(TensorCmd.matmul(src=pl.p_act, w=pl.v_w + (j * nd + c) * t,
                                             dst=pl.pv_acc + c * mq, m=mq, fp8=fp8))
            for c in range(nd):
                o = pl.o_acc + c * p.seq_q + q0
                pv = dict(src=pl.pv_acc + c * mq, dst=o, count=mq, in_int=int(not fp8),
                          imm=head.s_v)
                if first:
                    cmds.append(V(VecOp.COPY, **pv))
                else:
                    cmds.append(V(VecOp.RESCALE, src2=o, state=0, bscale=1, **pv))
            first = False
        for c in range(nd):
            o = pl.o_acc + c * p.seq_q + q0
            cmds.append(V(VecOp.NORM, src=o, dst=o, count=mq, state=0))
    return cmds


def output_rows(pl: AttentionPlan) -> tuple[int, int]:
    """``(addr, n)``: the accumulator rows that hold O after the program."""
    return pl.o_acc, pl.nd * pl.problem.seq_q


def output(pl: AttentionPlan, rows: np.ndarray) -> np.ndarray:
    """O (Sq x d, float32) from the :func:`output_rows` words (uint32, n x T)."""
    p, t = pl.problem, pl.tile
    o = np.ascontiguousarray(rows, dtype=np.uint32).view(np.float32).reshape(pl.nd, p.seq_q, t)
    return o.transpose(1, 0, 2).reshape(p.seq_q, p.head_dim)


def macs(pl: AttentionPlan, cmds: list[TensorCmd]) -> int:
    """Useful multiply-accumulates of the program's matmuls (R x C per activation row)."""
    return sum(c.count for c in cmds if c.unit == 0) * pl.tile * pl.tile


def run_model(config: JalapenoConfig, head: QuantizedHead, mq: int | None = None):
    """Run the head on the golden model; returns ``(O float32, plan, commands, model)``."""
    from models.tensor_core import TensorCoreModel
    from models.tensor_cmd import ErrCode
    if head.problem.path == "fp8" and not config.systolic.fp8:
        config = replace(config, systolic=replace(config.systolic, fp8=True))
    pl = plan(config, head.problem, mq)
    model = TensorCoreModel(config)
    for mem, addr, rows in sram_images(pl, head):
        model.write(mem, addr, rows)
    cmds = program(pl, head)
    err = model.execute(cmds)
    if err != ErrCode.NONE:
        raise RuntimeError(f"the attention program raised {err!r} on the model")
    addr, n = output_rows(pl)
    return output(pl, model.acc[addr:addr + n]), pl, cmds, model


def accuracy(o: np.ndarray, ref: np.ndarray, head: QuantizedHead) -> dict:
    """RMS and max |O - ref| relative to max |V| (of the dequantized V)."""
    _, _, v = head.dequantized()
    vmax = float(np.max(np.abs(v))) or 1.0
    err = np.asarray(o, np.float64) - ref
    return {"rms_rel": float(np.sqrt(np.mean(err ** 2)) / vmax),
            "max_rel": float(np.max(np.abs(err)) / vmax),
            "cosine": cosine(o, ref),
            "nan": int(np.count_nonzero(np.isnan(o)))}


def cosine(o: np.ndarray, ref: np.ndarray) -> float:
    """Cosine similarity of the flattened outputs (1.0 when both are all zero, 0.0 when
    only one is; NaN anywhere gives NaN)."""
    a, b = np.asarray(o, np.float64).ravel(), np.asarray(ref, np.float64).ravel()
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return 1.0 if na == nb else 0.0
    return float(np.dot(a, b) / (na * nb))
