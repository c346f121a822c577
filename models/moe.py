"""Golden model of one mixture-of-experts (MoE) FFN layer, in the order the chip runs it.

``out[t] = sum over the kept choices j of token t of  w[t, j] * FFN_{e(t, j)}(x[t])``,
``FFN_e(x) = GELU(x W1_e) W2_e``, the top-k experts and their weights chosen by a router
``x @ Wr``. Every step is built only from bit-exact primitives of the other models
(``models.systolic.gemm_int8``: INT8 x INT8 -> INT32 wrapping; ``models.vector``:
``i2f``, ``fmul``, ``fadd``, ``fneg``, ``row_max``, ``row_sum``, ``exp_approx``,
``recip_approx``, ``gelu_approx``, ``to_int8``), so the RTL that runs these steps on
the tensor cores and the vector units is bit-exact to this model by construction; the
pure-integer steps (top-k, dispatch, capacity) are exact by definition. docs/moe.md
describes how the chip maps each step and has the figures.

Quantization (per tensor, symmetric, binary32 scales; :func:`quantize_moe`)
---------------------------------------------------------------------------
``x`` (tokens x d_model) -> INT8 ``xq`` and ``s_x``; router ``Wr`` (d_model x E) ->
``rq``, ``s_r``; per expert ``W1_e`` (d_model x d_ff) -> ``w1q[e]``, ``s_w1[e]``;
``W2_e`` (d_ff x d_model) -> ``w2q[e]``, ``s_w2[e]``. Each scale is
``float32(max|a| / 127)`` (1.0 for an all-zero tensor) and the codes are
``clip(rint(a / scale), -127, 127)``. The hidden activation scale ``s_h[e]`` is static
(known before the layer runs: the chip has no pass to measure it); :func:`quantize_moe`
calibrates it as ``float32(max|GELU(x W1_e)| / 127)`` over every token of a calibration
batch (by default the call's own ``x``) in float64 with dequantized operands.

Order of the layer (:func:`moe_forward`)
----------------------------------------
1. **Router logits** (:func:`route`): ``acc = gemm_int8(xq, rq)`` (INT32);
   ``s = fmul(s_x, s_r)``; ``logits = fmul(i2f(acc), s)`` (the vector unit's stage A,
   ``in_int = 1``, ``imm = s``).
2. **Top-k** (``1 <= k <= min(E, MAX_TOP_K)``): the experts of each token ranked by
   logit, descending, **ties to the lower expert id** (the full ranking is kept: reroute
   uses it); the first k are the choices. This is the vector unit's TOPK order
   (``models.vector.topk_perm``: lanes >= E masked to ``-inf`` rank last). **Softmax of the k selected logits** with the
   vector unit's ROWMAX / EXP / NORM order on k lanes: ``m = row_max(sel)``;
   ``e_j = exp_approx(fadd(sel_j, fneg(m)))``; ``l = row_sum(e)`` (EXP's
   ``fadd(fmul(+0, 1.0), row_sum)`` is that same value: the sum is >= 1);
   ``w_j = fmul(e_j, recip_approx(l))``. Choice 0 always has ``e_0 = 1.0``.
3. **Dispatch** (:func:`dispatch`): ``capacity = min(tokens, ceil(cf * tokens * k / E))``
   with ``cf`` taken as the exact rational of its shortest decimal form
   (``Fraction(repr(cf))``: 1.1 means 11/10) so a capacity that should be an integer is
   one. *Admission*, one assignment at a time in **choice-major** order (all first
   choices in token order, then all second choices, ...: a higher-ranked choice never
   loses its place to a lower-ranked one): the assignment ``(t, j)`` to expert ``e`` is
   kept if ``e`` has fewer than ``capacity`` kept assignments; otherwise, policy
   ``"drop"`` drops it, policy ``"reroute"`` gives it to the token's next-ranked expert
   *beyond its top k* (ranks k, k+1, ... E-1, in rank order, each tried at most once per
   token) that still has room, keeping the weight ``w[t, j]``; with no such expert it
   is dropped. *Placement*: ``tokens_per_expert[e]`` = kept assignments of ``e``;
   ``offsets`` = its exclusive prefix sum; a second pass in **token order** (token
   major, choice minor) gives every kept assignment the slot ``offsets[e] + fill[e]++``,
   so each expert's rows are its tokens in increasing token order, experts one after
   another. ``dropped`` counts dropped assignments.
4. **Experts** (:func:`expert_ffn`), on the gathered rows ``xq[slot_token]`` of each
   expert: ``a1 = gemm_int8(x_e, w1q[e])``; ``h = to_int8(fmul(gelu_approx(fmul(
   i2f(a1), fmul(s_x, s_w1[e]))), inv_s_h[e]))`` (one GELU vector command: stage A
   ``in_int``, ``imm = fmul(s_x, s_w1[e])``; output stage ``imm2 = inv_s_h[e] =
   float32(1 / s_h[e])``, INT8: RNE, saturating); ``a2 = gemm_int8(h, w2q[e])``;
   ``y = fmul(i2f(a2), fmul(s_h[e], s_w2[e]))`` (a COPY command, binary32 out). INT32
   wrap-around is associative, so splitting d_ff or the tokens across commands or
   tiles does not change a bit.
5. **Combine** (:func:`combine`): ``out[t] = +0``; for each choice ``j = 0 .. k-1`` in
   choice order, if kept: ``out[t] = fadd(out[t], fmul(w[t, j], y[slot[t, j]]))``.
   A dropped choice adds nothing; a token with every choice dropped gets ``+0`` in every
   lane (the layer's residual connection, outside this layer, passes it through).

References
----------
:func:`reference` is the same layer in float64 on the same quantized tensors
(dequantized), with exact softmax and GELU and no quantization of ``h``: routing ranks
the exact logits ``s_x * s_r * (xq @ rq)`` (ties to the lower id, as above) and uses
the same :func:`dispatch` rules. ``gelu="sigmoid"`` (default) is the function the chip
approximates, ``a * sigmoid(1.702 a)``; ``gelu="erf"`` is the erf GELU (adds the
sigmoid form's own error). :func:`accuracy` gives the per-token cosine.

The analytical cycle bound of the layer on the chip is in :mod:`models.moe_perf`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from models.systolic import gemm_int8
from models.vector import (exp_approx, fadd, fmul, fneg, gelu_approx, i2f, recip_approx,
                           row_max, row_sum, to_int8, topk_perm)

__all__ = ["MAX_TOP_K", "POLICIES", "ROUTERS", "MoeProblem", "MoeInput", "MoeWeights",
           "Routing", "Dispatch", "MoeResult", "quantize_tensor", "quantize_moe", "route",
           "softmax_k", "rank_experts", "dispatch", "expert_ffn", "combine",
           "moe_forward", "moe_layer", "reference", "accuracy", "random_moe", "macs"]

#: Largest k the router's top-k hardware is planned for (issue 15: k = 2..8).
MAX_TOP_K = 8
#: Overflow policies of a full expert.
POLICIES = ("drop", "reroute")
#: Router distributions of :func:`random_moe`.
ROUTERS = ("uniform", "skewed")



def _check_pos_int(owner: str, name: str, v) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{owner}.{name} must be an int >= 1, got {v!r}")


@dataclass(frozen=True)
class MoeProblem:
    """Shape and routing rules of one MoE layer.

    Parameters
    ----------
    tokens, d_model, d_ff, experts : int
        T, the model width, the expert hidden width and E (each >= 1).
    top_k : int
        Experts per token, ``1 <= top_k <= min(experts, MAX_TOP_K)``.
    capacity_factor : float
        > 0; ``capacity = min(tokens, ceil(cf * tokens * top_k / experts))`` (module
        docstring: ``cf`` as its decimal rational).
    overflow : str
        ``"drop"`` or ``"reroute"``.

    Raises
    ------
    ValueError
        Naming the field and the bad value.
    """

    tokens: int
    d_model: int
    d_ff: int
    experts: int
    top_k: int
    capacity_factor: float = 1.25
    overflow: str = "drop"

    def __post_init__(self):
        for name in ("tokens", "d_model", "d_ff", "experts", "top_k"):
            _check_pos_int("MoeProblem", name, getattr(self, name))
        if self.top_k > self.experts:
            raise ValueError(f"MoeProblem.top_k must be <= experts ({self.experts}), "
                             f"got {self.top_k}")
        if self.top_k > MAX_TOP_K:
            raise ValueError(f"MoeProblem.top_k must be <= MAX_TOP_K ({MAX_TOP_K}), "
                             f"got {self.top_k}")
        cf = self.capacity_factor
        if (isinstance(cf, bool) or not isinstance(cf, (int, float, np.floating))
                or not math.isfinite(cf) or cf <= 0):
            raise ValueError(f"MoeProblem.capacity_factor must be a finite number > 0, "
                             f"got {cf!r}")
        if self.overflow not in POLICIES:
            raise ValueError(f"MoeProblem.overflow must be one of {POLICIES}, "
                             f"got {self.overflow!r}")

    @property
    def capacity(self) -> int:
        """Kept assignments per expert at most (module docstring, step 3)."""
        cf = Fraction(repr(float(self.capacity_factor)))
        c = math.ceil(cf * self.tokens * self.top_k / self.experts)
        return max(1, min(self.tokens, c))

    @property
    def assignments(self) -> int:
        """tokens x top_k (token, choice) pairs."""
        return self.tokens * self.top_k


def _int8(owner: str, name: str, a, shape: tuple) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype != np.int8:
        raise TypeError(f"{owner}.{name} must be int8, got dtype {a.dtype}")
    if a.shape != shape:
        raise ValueError(f"{owner}.{name} must have shape {shape}, got {a.shape}")
    return a


def _scales(owner: str, name: str, s, n: int | None) -> np.ndarray:
    s = np.asarray(s, np.float32)
    if (n is None and s.shape != ()) or (n is not None and s.shape != (n,)):
        raise ValueError(f"{owner}.{name} must have shape {() if n is None else (n,)}, "
                         f"got {s.shape}")
    if not np.all(np.isfinite(s) & (s > 0)):
        raise ValueError(f"{owner}.{name} must be finite and > 0, got {s}")
    return s


@dataclass(frozen=True)
class MoeInput:
    """The quantized tokens: ``x`` int8 (tokens, d_model) and the binary32 scale ``s_x``."""

    x: np.ndarray
    s_x: np.float32

    def __post_init__(self):
        x = np.asarray(self.x)
        if x.ndim != 2:
            raise ValueError(f"MoeInput.x must be 2-D (tokens, d_model), got shape {x.shape}")
        _int8("MoeInput", "x", x, x.shape)
        object.__setattr__(self, "s_x", _scales("MoeInput", "s_x", self.s_x, None)[()])


@dataclass(frozen=True)
class MoeWeights:
    """Quantized router and expert weights with their binary32 scales.

    Attributes
    ----------
    router : int8 (d_model, E)
    s_router : float32
    w1 : int8 (E, d_model, d_ff)
    s_w1 : float32 (E,)
    w2 : int8 (E, d_ff, d_model)
    s_w2 : float32 (E,)
    s_h : float32 (E,)
        Static scale of each expert's INT8 hidden activation.
    """

    router: np.ndarray
    s_router: np.float32
    w1: np.ndarray
    s_w1: np.ndarray
    w2: np.ndarray
    s_w2: np.ndarray
    s_h: np.ndarray

    def __post_init__(self):
        r = np.asarray(self.router)
        if r.ndim != 2:
            raise ValueError(f"MoeWeights.router must be 2-D (d_model, E), got {r.shape}")
        d, e = r.shape
        w1 = np.asarray(self.w1)
        if w1.ndim != 3 or w1.shape[:2] != (e, d):
            raise ValueError(f"MoeWeights.w1 must have shape ({e}, {d}, d_ff), got {w1.shape}")
        f = w1.shape[2]
        _int8("MoeWeights", "router", r, (d, e))
        _int8("MoeWeights", "w1", w1, (e, d, f))
        _int8("MoeWeights", "w2", self.w2, (e, f, d))
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        set_("s_router", _scales("MoeWeights", "s_router", self.s_router, None)[()])
        for name in ("s_w1", "s_w2", "s_h"):
            set_(name, _scales("MoeWeights", name, getattr(self, name), e))

    @property
    def d_model(self) -> int:
        return self.router.shape[0]

    @property
    def experts(self) -> int:
        return self.router.shape[1]

    @property
    def d_ff(self) -> int:
        return self.w1.shape[2]

    @property
    def inv_s_h(self) -> np.ndarray:
        """``float32(1 / s_h)``: the GELU command's output scale (``imm2``)."""
        return (1.0 / self.s_h.astype(np.float64)).astype(np.float32)


@dataclass(frozen=True)
class Routing:
    """Router result: binary32 ``logits`` (T, E), the full ``ranking`` (T, E) of expert
    ids (best first, ties to the lower id) and the binary32 ``weights`` (T, k) of the
    first k (float64 in :func:`reference`)."""

    logits: np.ndarray
    ranking: np.ndarray
    weights: np.ndarray

    @property
    def choices(self) -> np.ndarray:
        """The top-k expert ids (T, k), best first."""
        return self.ranking[:, :self.weights.shape[1]]


@dataclass(frozen=True)
class Dispatch:
    """Where every (token, choice) went (module docstring, step 3).

    Attributes
    ----------
    capacity : int
    expert : int64 (T, k)
        Expert that processes the choice (its own or a rerouted one), -1 if dropped.
    rerouted : bool (T, k)
    slot : int64 (T, k)
        Row of the expert-major dispatch buffer, -1 if dropped.
    tokens_per_expert, offsets : int64 (E,)
        Kept assignments per expert and their exclusive prefix sum.
    slot_token : int64 (kept,)
        Token of each dispatch row: expert ``e``'s rows are
        ``offsets[e] .. offsets[e] + tokens_per_expert[e] - 1``, tokens increasing.
    """

    capacity: int
    expert: np.ndarray
    rerouted: np.ndarray
    slot: np.ndarray
    tokens_per_expert: np.ndarray
    offsets: np.ndarray
    slot_token: np.ndarray

    @property
    def kept(self) -> np.ndarray:
        return self.expert >= 0

    @property
    def dropped(self) -> int:
        """Dropped (token, choice) assignments."""
        return int(np.count_nonzero(self.expert < 0))

    @property
    def dropped_tokens(self) -> int:
        """Tokens with every choice dropped (their output is +0)."""
        return int(np.count_nonzero(np.all(self.expert < 0, axis=1)))

    def rows(self, e: int) -> slice:
        """Dispatch rows of expert ``e``."""
        o = int(self.offsets[e])
        return slice(o, o + int(self.tokens_per_expert[e]))


@dataclass(frozen=True)
class MoeResult:
    """:func:`moe_forward` / :func:`moe_layer`: ``out`` float32 (T, d_model) and every
    intermediate the hardware produces (``y``: float32 expert outputs per dispatch row)."""

    problem: MoeProblem
    inputs: MoeInput
    weights: MoeWeights
    routing: Routing
    dispatch: Dispatch
    y: np.ndarray
    out: np.ndarray

    @property
    def tokens_per_expert(self) -> np.ndarray:
        return self.dispatch.tokens_per_expert

    @property
    def dropped(self) -> int:
        return self.dispatch.dropped


# --- quantization ------------------------------------------------------------------------
def quantize_tensor(a, name: str = "a") -> tuple[np.ndarray, np.float32]:
    """Per-tensor symmetric INT8: ``s = float32(max|a| / 127)`` (1.0 if all zero),
    ``q = clip(rint(a / s), -127, 127)``. Raises ``ValueError`` on NaN/inf."""
    a = np.asarray(a, np.float64)
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} has NaN or inf; quantization needs finite values")
    amax = float(np.max(np.abs(a))) if a.size else 0.0
    s = np.float32(amax / 127.0) if amax > 0 else np.float32(1.0)
    if not s > 0:                      # a denormal-small tensor
        s = np.float32(np.finfo(np.float32).tiny)
    return np.clip(np.rint(a / np.float64(s)), -127, 127).astype(np.int8), s


def _gelu64(a: np.ndarray, kind: str = "sigmoid") -> np.ndarray:
    if kind == "sigmoid":
        return a / (1.0 + np.exp(-1.702 * a))
    if kind == "erf":
        from math import erf
        return 0.5 * a * (1.0 + np.vectorize(erf)(a / math.sqrt(2.0)))
    raise ValueError(f"gelu must be 'sigmoid' or 'erf', got {kind!r}")


def _expert_arrays(experts, d_model: int) -> tuple[np.ndarray, np.ndarray]:
    """(W1 stack (E, d, f), W2 stack (E, f, d)) from a sequence of (W1, W2) pairs."""
    try:
        pairs = [(np.asarray(w1, np.float64), np.asarray(w2, np.float64)) for w1, w2 in experts]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"experts must be a sequence of (W1, W2) pairs: {exc}") from None
    if not pairs:
        raise ValueError("experts must hold at least one (W1, W2) pair")
    f = pairs[0][0].shape[-1] if pairs[0][0].ndim == 2 else -1
    for i, (w1, w2) in enumerate(pairs):
        if w1.shape != (d_model, f) or w2.shape != (f, d_model):
            raise ValueError(f"experts[{i}]: W1 must be ({d_model}, d_ff) and W2 (d_ff, "
                             f"{d_model}) with the d_ff of experts[0] ({f}), got "
                             f"{w1.shape} and {w2.shape}")
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def quantize_moe(x, router_w, experts, *, calib_x=None) -> tuple[MoeInput, MoeWeights]:
    """Quantize a float layer (module docstring); ``s_h`` calibrated on ``calib_x``
    (default ``x``).

    Parameters
    ----------
    x : array_like (tokens, d_model)
    router_w : array_like (d_model, E)
    experts : sequence of E pairs (W1 (d_model, d_ff), W2 (d_ff, d_model))
    calib_x : array_like (n, d_model), optional
    """
    x = np.asarray(x, np.float64)
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D (tokens, d_model), got shape {x.shape}")
    d = x.shape[1]
    router_w = np.asarray(router_w, np.float64)
    if router_w.ndim != 2 or router_w.shape[0] != d:
        raise ValueError(f"router_w must have shape ({d}, experts), got {router_w.shape}")
    w1, w2 = _expert_arrays(experts, d)
    if w1.shape[0] != router_w.shape[1]:
        raise ValueError(f"experts has {w1.shape[0]} pairs, router_w has "
                         f"{router_w.shape[1]} columns")
    xq, s_x = quantize_tensor(x, "x")
    rq, s_r = quantize_tensor(router_w, "router_w")
    q1 = [quantize_tensor(w, f"experts[{i}] W1") for i, w in enumerate(w1)]
    q2 = [quantize_tensor(w, f"experts[{i}] W2") for i, w in enumerate(w2)]
    cx = x if calib_x is None else np.asarray(calib_x, np.float64)
    if cx.ndim != 2 or cx.shape[1] != d:
        raise ValueError(f"calib_x must have shape (n, {d}), got {cx.shape}")
    cq, cs = quantize_tensor(cx, "calib_x")
    s_h = []
    for q, s in q1:
        hmax = np.max(np.abs(_gelu64((cq.astype(np.float64) * cs) @ (q * np.float64(s)))))
        s_h.append(np.float32(hmax / 127.0) if hmax > 0 else np.float32(1.0))
    w = MoeWeights(rq, s_r, np.stack([q for q, _ in q1]), np.array([s for _, s in q1]),
                   np.stack([q for q, _ in q2]), np.array([s for _, s in q2]), np.array(s_h))
    return MoeInput(xq, s_x), w


# --- the layer, step by step ---------------------------------------------------------------
def _check_fit(problem: MoeProblem, inputs: MoeInput, weights: MoeWeights) -> None:
    """Raise ``ValueError`` naming the field where the data disagree with ``problem``."""
    got = (("tokens", inputs.x.shape[0], "x"), ("d_model", inputs.x.shape[1], "x"),
           ("d_model", weights.d_model, "weights"), ("d_ff", weights.d_ff, "weights"),
           ("experts", weights.experts, "weights"))
    for field, n, what in got:
        if getattr(problem, field) != n:
            raise ValueError(f"MoeProblem.{field} is {getattr(problem, field)} but the "
                             f"{what} have {n}")


def rank_experts(logits) -> np.ndarray:
    """Expert ids of each row by value, descending, ties to the lower id (int64).

    The values are compared as numbers (``-0 == +0``); a stable sort keeps equal values
    in increasing id order. For the float64 logits of :func:`reference`; the binary32
    logits of :func:`route` are ranked by ``models.vector.topk_perm`` (the vector unit's
    TOPK, the same order on numbers, NaN above ``+inf``).
    """
    logits = np.asarray(logits)
    return np.argsort(-logits.astype(np.float64), axis=1, kind="stable").astype(np.int64)


def softmax_k(sel) -> np.ndarray:
    """Softmax of the selected binary32 logits (T, k), the vector unit's order (step 2)."""
    sel = np.asarray(sel, np.float32)
    m = row_max(sel)
    e = exp_approx(fadd(sel, fneg(np.broadcast_to(m[:, None], sel.shape).astype(np.float32))))
    r = recip_approx(row_sum(e))
    return fmul(e, np.broadcast_to(r[:, None], e.shape).astype(np.float32))


def route(problem: MoeProblem, inputs: MoeInput, weights: MoeWeights) -> Routing:
    """Router logits, ranking and top-k softmax weights (module docstring, steps 1-2)."""
    _check_fit(problem, inputs, weights)
    acc = gemm_int8(inputs.x, weights.router)
    s = fmul(np.full(acc.shape, inputs.s_x, np.float32),
             np.full(acc.shape, weights.s_router, np.float32))
    logits = fmul(i2f(acc), s)
    ranking = topk_perm(logits)             # the vector unit's TOPK order (one source)
    sel = np.take_along_axis(logits, ranking[:, :problem.top_k], axis=1)
    return Routing(logits, ranking, softmax_k(sel))


def _admit(problem: MoeProblem, ranking: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Choice-major admission under the capacity: (expert (T, k), rerouted (T, k))."""
    T, k, E, cap = problem.tokens, problem.top_k, problem.experts, problem.capacity
    expert = np.full((T, k), -1, np.int64)
    rerouted = np.zeros((T, k), bool)
    count = np.zeros(E, np.int64)
    next_rank = np.full(T, k, np.int64)      # reroute pointer into each token's ranking
    for j in range(k):
        for t in range(T):
            e = int(ranking[t, j])
            if count[e] < cap:
                expert[t, j] = e
                count[e] += 1
                continue
            if problem.overflow != "reroute":
                continue
            # a skipped expert is full and stays full: the pointer never goes back
            while next_rank[t] < E:
                e2 = int(ranking[t, next_rank[t]])
                next_rank[t] += 1
                if count[e2] < cap:
                    expert[t, j], rerouted[t, j] = e2, True
                    count[e2] += 1
                    break
    return expert, rerouted


def _place(problem: MoeProblem, expert: np.ndarray):
    """Counting pass, exclusive prefix sum, token-order placement."""
    E = problem.experts
    tpe = np.bincount(expert[expert >= 0], minlength=E).astype(np.int64)
    offsets = np.concatenate([[0], np.cumsum(tpe)[:-1]]).astype(np.int64)
    fill = np.zeros(E, np.int64)
    slot = np.full(expert.shape, -1, np.int64)
    slot_token = np.zeros(int(tpe.sum()), np.int64)
    for t in range(expert.shape[0]):
        for j in range(expert.shape[1]):
            e = expert[t, j]
            if e >= 0:
                s = offsets[e] + fill[e]
                fill[e] += 1
                slot[t, j], slot_token[s] = s, t
    return tpe, offsets, slot, slot_token


def dispatch(problem: MoeProblem, ranking) -> Dispatch:
    """Capacity, overflow policy and placement of every choice (module docstring, step 3).

    Parameters
    ----------
    problem : MoeProblem
    ranking : int array (tokens, experts)
        Each row a permutation of the expert ids, best first (:attr:`Routing.ranking`).
    """
    ranking = np.asarray(ranking)
    shape = (problem.tokens, problem.experts)
    if ranking.shape != shape or ranking.dtype.kind not in "iu":
        raise ValueError(f"ranking must be an int array of shape {shape}, got "
                         f"{ranking.dtype}{ranking.shape}")
    if not np.array_equal(np.sort(ranking, axis=1),
                          np.broadcast_to(np.arange(problem.experts), shape)):
        raise ValueError("ranking rows must be permutations of the expert ids")
    expert, rerouted = _admit(problem, ranking)
    tpe, offsets, slot, slot_token = _place(problem, expert)
    return Dispatch(problem.capacity, expert, rerouted, slot, tpe, offsets, slot_token)


def expert_ffn(x_e, weights: MoeWeights, e: int, s_x) -> np.ndarray:
    """One expert on its gathered INT8 rows ``x_e`` (n, d_model): binary32 (n, d_model).

    Step 4 of the module docstring: INT8 GEMM, one GELU vector command (dequantize by
    ``fmul(s_x, s_w1[e])``, GELU, requantize by ``inv_s_h[e]`` to INT8), INT8 GEMM, one
    COPY command (dequantize by ``fmul(s_h[e], s_w2[e])``).
    """
    x_e = np.asarray(x_e)
    if x_e.shape[0] == 0:
        return np.zeros((0, weights.d_model), np.float32)
    a1 = gemm_int8(x_e, weights.w1[e])
    s1 = fmul(np.float32(s_x), weights.s_w1[e])
    g = gelu_approx(fmul(i2f(a1), np.full(a1.shape, s1, np.float32)))
    h = to_int8(fmul(g, np.full(g.shape, weights.inv_s_h[e], np.float32)))
    a2 = gemm_int8(h, weights.w2[e])
    s2 = fmul(weights.s_h[e], weights.s_w2[e])
    return fmul(i2f(a2), np.full(a2.shape, s2, np.float32))


def combine(routing: Routing, disp: Dispatch, y) -> np.ndarray:
    """Weighted sum of each token's kept expert outputs in choice order (step 5).

    ``y`` float32 (kept, d_model) in dispatch-row order; returns float32 (T, d_model).
    """
    y = np.asarray(y, np.float32)
    T, k = disp.expert.shape
    if y.shape[0] != disp.slot_token.shape[0]:
        raise ValueError(f"y must have one row per kept assignment "
                         f"({disp.slot_token.shape[0]}), got {y.shape[0]}")
    w = np.asarray(routing.weights, np.float32)
    out = np.zeros((T, y.shape[1]), np.float32)
    for j in range(k):
        kept = disp.slot[:, j] >= 0
        term = fmul(np.broadcast_to(w[kept, j][:, None], (int(kept.sum()), y.shape[1]))
                    .astype(np.float32), y[disp.slot[kept, j]])
        out[kept] = fadd(out[kept], term)
    return out


def moe_forward(problem: MoeProblem, inputs: MoeInput, weights: MoeWeights) -> MoeResult:
    """The golden model of the layer on quantized data (module docstring, steps 1-5)."""
    routing = route(problem, inputs, weights)
    disp = dispatch(problem, routing.ranking)
    y = np.zeros((disp.slot_token.shape[0], problem.d_model), np.float32)
    for e in range(problem.experts):
        rows = disp.rows(e)
        y[rows] = expert_ffn(inputs.x[disp.slot_token[rows]], weights, e, inputs.s_x)
    return MoeResult(problem, inputs, weights, routing, disp, y,
                     combine(routing, disp, y))


def moe_layer(x, router_w, experts, k: int, capacity_factor: float = 1.25, *,
              overflow: str = "drop", backend: str = "model", calib_x=None,
              config="tiny", sim: str = "verilator", seed: int | None = None,
              split: bool = True) -> MoeResult:
    """Runtime API of issue 15: float arrays in, the layer's binary32 output out.

    Parameters
    ----------
    x : array_like (tokens, d_model)
    router_w : array_like (d_model, E)
    experts : sequence of E pairs (W1 (d_model, d_ff), W2 (d_ff, d_model))
    k : int
        Experts per token.
    capacity_factor : float
    overflow : {"drop", "reroute"}
    backend : {"model", "rtl"}
        ``"rtl"``: the two chip programs on the SoC RTL (``models.runtime_moe``,
        docs/moe.md "On the chip (built)"), checked bit for bit against the model; the
        result is a ``models.runtime_moe.MoeRtlResult`` (``cycles`` of both programs).
    calib_x : array_like, optional
        Calibration tokens for the hidden scales (default ``x``).
    config, sim, seed, split
        ``backend="rtl"``: preset or ``JalapenoConfig`` (default ``"tiny"``),
        simulator, simulator seed, split a hot expert over tiles.

    Returns
    -------
    MoeResult
        ``out`` float32 (tokens, d_model), ``tokens_per_expert``, ``dropped``, ...

    Raises
    ------
    ValueError
        Bad shapes, NaN/inf, ``k`` outside ``1 .. min(E, MAX_TOP_K)``, ``capacity_factor
        <= 0``, unknown ``overflow`` or ``backend``; before anything runs.
    """
    if backend not in ("model", "rtl"):
        raise ValueError(f"backend must be 'model' or 'rtl', got {backend!r}")
    inputs, weights = quantize_moe(x, router_w, experts, calib_x=calib_x)
    problem = MoeProblem(inputs.x.shape[0], weights.d_model, weights.d_ff, weights.experts,
                         k, capacity_factor, overflow)
    if backend == "rtl":
        from models.runtime_moe import moe_layer_rtl
        return moe_layer_rtl(problem, inputs, weights, config=config, sim=sim, seed=seed,
                             split=split)
    return moe_forward(problem, inputs, weights)


# --- references ------------------------------------------------------------------------------
def reference(problem: MoeProblem, inputs: MoeInput, weights: MoeWeights, *,
              gelu: str = "sigmoid") -> tuple[np.ndarray, Routing, Dispatch]:
    """float64 layer on the dequantized tensors: ``(out, routing, dispatch)``.

    Exact logits ``s_x * s_r * (xq @ rq)`` (integers, exact in float64), ranked as in the
    model; exact softmax of the top k; the same dispatch rules; ``h`` not quantized.
    """
    _check_fit(problem, inputs, weights)
    x = inputs.x.astype(np.float64)
    xd = x * np.float64(inputs.s_x)
    logits = (x @ weights.router.astype(np.float64)) * (
        np.float64(inputs.s_x) * np.float64(weights.s_router))
    ranking = rank_experts(logits)
    sel = np.take_along_axis(logits, ranking[:, :problem.top_k], axis=1)
    p = np.exp(sel - sel[:, :1])
    w = p / p.sum(axis=1, keepdims=True)
    disp = dispatch(problem, ranking)
    out = np.zeros((problem.tokens, problem.d_model))
    for e in range(problem.experts):
        t = np.nonzero(disp.expert == e)
        if t[0].size == 0:
            continue
        w1 = weights.w1[e].astype(np.float64) * np.float64(weights.s_w1[e])
        w2 = weights.w2[e].astype(np.float64) * np.float64(weights.s_w2[e])
        y = _gelu64(xd[t[0]] @ w1, gelu) @ w2
        np.add.at(out, t[0], w[t][:, None] * y)
    return out, Routing(logits, ranking, w), disp


def accuracy(out, ref) -> dict:
    """Per-token cosine of ``out`` against ``ref`` (two zero rows: 1; one zero row: 0).

    Returns ``{"cosine": float64 (T,), "min_cosine", "max_abs_err", "nan"}``.
    """
    a = np.asarray(out, np.float64)
    b = np.asarray(ref, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"out and ref shapes differ: {a.shape} vs {b.shape}")
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    dot = np.sum(a * b, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where((na == 0) & (nb == 0), 1.0,
                       np.where((na == 0) | (nb == 0), 0.0, dot / (na * nb)))
    return {"cosine": cos, "min_cosine": float(np.min(cos)) if cos.size else 1.0,
            "max_abs_err": float(np.max(np.abs(a - b))) if a.size else 0.0,
            "nan": int(np.count_nonzero(np.isnan(a)))}


# --- random problems ---------------------------------------------------------------------------
#: Norm of the common component of the random tokens (the skewed router's lever).
_MEAN_NORM = 4.0


def _top_k_share(x, w, hot: int, k: int) -> int:
    """Tokens whose float64 top-k (ties to the lower id) contains expert ``hot``."""
    return int(np.count_nonzero(rank_experts(x @ w)[:, :k] == hot))


def random_moe(problem: MoeProblem, rng: np.random.Generator, *, router: str = "uniform",
               hot_expert: int = 0, hot_share: float = 4.0):
    """Random float layer ``(x, router_w, experts)`` for :func:`moe_layer`.

    Tokens are ``z + 4 u`` (``z`` ~ N(0, I), ``u`` a random unit vector common to all
    tokens); router columns ~ N(0, 1/d_model) with their ``u`` component removed, so
    ``"uniform"`` favours no expert. ``"skewed"`` adds ``beta * u`` to column
    ``hot_expert``, ``beta`` found by bisection so that the hot expert is among the
    top k of ``min(tokens, hot_share * tokens * k / E)`` tokens (``hot_share`` times its
    fair share of the assignments) in float64 before quantization. W1 ~ N(0,
    1/d_model), W2 ~ N(0, 1/d_ff).
    """
    if router not in ROUTERS:
        raise ValueError(f"router must be one of {ROUTERS}, got {router!r}")
    if not 0 <= hot_expert < problem.experts:
        raise ValueError(f"hot_expert must be in [0, {problem.experts}), got {hot_expert}")
    if not hot_share > 0:
        raise ValueError(f"hot_share must be > 0, got {hot_share}")
    T, d, f, E, k = (problem.tokens, problem.d_model, problem.d_ff, problem.experts,
                     problem.top_k)
    u = rng.standard_normal(d)
    u /= np.linalg.norm(u)
    x = rng.standard_normal((T, d)) + _MEAN_NORM * u
    w = rng.standard_normal((d, E)) / math.sqrt(d)
    w -= np.outer(u, u @ w)
    experts = [(rng.standard_normal((d, f)) / math.sqrt(d),
                rng.standard_normal((f, d)) / math.sqrt(f)) for _ in range(E)]
    if router == "skewed":
        target = min(T, math.ceil(hot_share * T * k / E))
        lo, hi = 0.0, 1.0
        while _top_k_share(x, w + np.outer(u, np.eye(E)[hot_expert] * hi), hot_expert, k) \
                < target and hi < 1e4:
            lo, hi = hi, 2 * hi
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            got = _top_k_share(x, w + np.outer(u, np.eye(E)[hot_expert] * mid), hot_expert, k)
            lo, hi = (mid, hi) if got < target else (lo, mid)
        w = w + np.outer(u, np.eye(E)[hot_expert] * hi)
    return x, w, experts


def macs(problem: MoeProblem, tokens_per_expert=None) -> int:
    """Useful multiply-accumulates: the router GEMM plus two GEMMs per kept assignment
    (default: every assignment kept)."""
    kept = (problem.assignments if tokens_per_expert is None
            else int(np.sum(tokens_per_expert)))
    return (problem.tokens * problem.d_model * problem.experts
            + 2 * kept * problem.d_model * problem.d_ff)
