"""Attention heads with controlled row entropy, for the accuracy of the hardware's softmax.

Issue 14: the precision of the probabilities P matters most on *diffuse* heads (late
layers of real transformers), where a row spreads its mass over many keys. This module
makes heads whose softmax rows have a chosen mean normalized entropy ``H / ln(keys)``
(1.0: uniform over the valid keys; towards 0: one key takes the row), so the accuracy
bench (``scripts/bench_attention.py``) and the tests can sweep from peaked to
near-uniform rows over 128 .. 4096 keys.

The entropy is measured on the float64 reference softmax of the *quantized* head
(what :func:`models.attention.reference` attends over), and the head is found by
bisection on the spread of the scores (``logit_std`` of
:func:`models.attention.random_head`; the entropy falls monotonically as the spread
grows). Everything is seeded: one ``numpy.random.Generator`` per head.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from models import attention as att
from models.config import JalapenoConfig

__all__ = ["row_entropy", "entropy_head", "EntropyCase", "ENTROPY_SET", "accuracy_config",
           "run_case", "emulate_p"]


def row_entropy(head: att.QuantizedHead) -> np.ndarray:
    """Normalized entropy ``H / ln(n_valid)`` of every row of the float64 reference
    softmax (n_valid = the keys the row sees; rows with < 2 valid keys give 0)."""
    p = head.problem
    q, k, _ = head.dequantized()
    s = np.where(att.mask(p), -np.inf, (q @ k.T) * p.softmax_scale)
    out = np.zeros(p.seq_q)
    for i, row in enumerate(s):
        live = row[np.isfinite(row)]
        if live.size < 2:
            continue
        e = np.exp(live - live.max())
        pr = e / e.sum()
        nz = pr[pr > 0]
        out[i] = float(-(nz * np.log(nz)).sum() / math.log(live.size))
    return out


def entropy_head(problem: att.AttentionProblem, seed: int, entropy: float,
                 tol: float = 0.01, iters: int = 40) -> tuple[att.QuantizedHead, float]:
    """A random head whose mean normalized row entropy is ``entropy`` (within ``tol``).

    Returns ``(head, measured mean entropy)``. The same seed draws the same Gaussian
    Q, K, V directions; only their spread changes during the bisection.
    """
    if not 0.0 < entropy < 1.0:
        raise ValueError(f"entropy must be in (0, 1), got {entropy}")

    def make(std):
        head = att.random_head(problem, np.random.default_rng(seed), logit_std=std)
        return head, float(row_entropy(head).mean())

    lo, hi = 1e-3, 64.0                       # spread: near-uniform .. one-hot rows
    head, h = make(math.sqrt(lo * hi))
    for _ in range(iters):
        mid = math.sqrt(lo * hi)
        head, h = make(mid)
        if abs(h - entropy) <= tol:
            break
        if h > entropy:
            lo = mid
        else:
            hi = mid
    return head, h


@dataclass(frozen=True)
class EntropyCase:
    """One head of the entropy set."""

    keys: int
    entropy: float
    head_dim: int = 64
    queries: int = 32
    causal: bool = False


#: Peaked to near-uniform rows over 128 .. 4096 keys (the issue's test set).
ENTROPY_SET = tuple(EntropyCase(n, h) for n in (128, 512, 1024, 4096)
                    for h in (0.2, 0.4, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99))


def accuracy_config(config: JalapenoConfig, case: EntropyCase) -> JalapenoConfig:
    """``config`` with SRAMs deep enough to hold the case's K and V on one tile.

    The accuracy of a head does not depend on where its operands live: every query row
    sees the same key blocks, in the same order, with the same commands whichever SRAM
    rows hold them (the streamed chip programs are tested bit-exact against this
    single-tile program), so the golden model may run it on a deeper tensor core.
    """
    t = config.systolic.rows
    nd = case.head_dim // t
    nkb = -(-case.keys // t)
    w_rows = max(config.tensor.weight_rows, 2 * nkb * nd * t)
    rows = max(config.tensor.acc_rows, (1 + 2 * nd) * case.queries)
    if w_rows > 1 << 16:
        raise ValueError(f"{case}: K and V need {w_rows} weight rows, more than 16-bit "
                         "SRAM addresses reach")
    tensor = replace(config.tensor, weight_rows=w_rows, acc_rows=rows,
                     act_rows=max(config.tensor.act_rows, rows))
    return replace(config, tensor=tensor)


def run_case(config: JalapenoConfig, case: EntropyCase, path: str, seed: int) -> dict:
    """Run one head of the set on the golden model; returns its accuracy record."""
    problem = att.AttentionProblem(case.queries, case.keys, case.head_dim, path=path,
                                   causal=case.causal)
    head, h = entropy_head(problem, seed, case.entropy)
    cfg = accuracy_config(config, case)
    o, _, _, _ = att.run_model(cfg, head)
    ref = att.reference(head)
    acc = att.accuracy(o, ref, head)
    rows = [att.cosine(o[i], ref[i]) for i in range(case.queries)]
    return {"path": path, "keys": case.keys, "seq": case.keys, "queries": case.queries,
            "head_dim": case.head_dim, "causal": case.causal,
            "entropy_target": case.entropy, "entropy": round(h, 4), "seed": seed,
            **acc, "min_row_cosine": float(min(rows))}


def emulate_p(scores: np.ndarray, v: np.ndarray, block: int, mode: str) -> np.ndarray:
    """float64 emulation of the online softmax with 8-bit P, to compare representations.

    ``mode``: ``"running"`` (``round(127 p)`` relative to the running max: the chip before
    issue 14), ``"u8"`` (``round(255 p)``, unsigned codes) or ``"block"`` (``round(127 p
    2^k)`` with the per-block power-of-two scale the chip uses). Everything else is exact
    float64, so the differences are the representation's alone. Returns O (rows x d).
    """
    rows = scores.shape[0]
    m, l = np.full(rows, -np.inf), np.zeros(rows)
    o = np.zeros((rows, v.shape[1]))
    for j in range(0, scores.shape[1], block):
        sb = scores[:, j:j + block]
        mb = sb.max(1)
        mn = np.maximum(m, mb)
        alpha = np.exp(m - mn)
        e = np.exp(sb - mn[:, None])
        scale = np.ones(rows)
        if mode == "block":
            scale = 2.0 ** -np.floor(np.minimum((mn - mb) * math.log2(math.e), 31))
        codes = np.round((255.0 if mode == "u8" else 127.0) * e / scale[:, None])
        l = l * alpha + scale * codes.sum(1)
        o = o * alpha[:, None] + scale[:, None] * (codes @ v[j:j + block])
        m = mn
    return o / l[:, None]
