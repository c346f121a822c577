"""The MoE layer's two programs (models.compiler_moe, models.runtime_moe) on the golden
chip model: bit-exact to models.moe.moe_forward (ranking, softmax weights, dispatch
tables and counters, y, out) on tiny and default shapes, drop and reroute, uniform and
skewed routers, with and without splitting, in any legal execution order; layout,
placement, token balance, overlap rules and the fit checks."""
import dataclasses
import logging

import numpy as np
import pytest

from models import compiler_moe as cm
from models import moe
from models.compiler import FitError
from models.config import get_preset
from models.isa import Opcode, check
from models.runtime_moe import compare, run_moe
from models.tensor_core import overlap_errors

SEED = 20261124
log = logging.getLogger(__name__)


def _big_hbm(name: str, factor: int = 4):
    """A preset with ``factor`` times its HBM (the NoC address widened to reach it)."""
    cfg = get_preset(name)
    return dataclasses.replace(
        cfg, noc=dataclasses.replace(cfg.noc, addr_bits=max(cfg.noc.addr_bits, 24)),
        hbm=dataclasses.replace(cfg.hbm, channel_bytes=cfg.hbm.channel_bytes * factor))


def _layer(problem, seed, router="uniform"):
    log.info("seed %d", seed)
    x, r, ex = moe.random_moe(problem, np.random.default_rng(seed), router=router)
    return moe.quantize_moe(x, r, ex)


def _check(run):
    """Bit-exact (run_moe checked it; checked again here), counters at 0, no race."""
    assert compare(run.model, run.chip, run.plan) == []
    bits = lambda a: a.view(np.uint32)  # noqa: E731
    assert np.array_equal(bits(run.chip.out), bits(run.model.out))
    for res in run.results:
        assert not res.tokens.any()                      # every token taken
    cfg = run.plan.cfg
    for prog in run.programs:
        for t in range(cfg.soc.tiles):
            tcs = [c.tensor for c in prog if c.opcode == Opcode.TENSOR and c.tile == t]
            assert [e for e in overlap_errors(cfg, tcs) if e.kind == "race"] == []
        assert all(not check(c, cfg) for c in prog)


CASES = [  # tokens, d_model, d_ff, E, k, cf, policy, router, chunk_tiles
    (16, 8, 16, 4, 2, 1.25, "drop", "uniform", None),
    (32, 16, 32, 4, 2, 1.0, "drop", "skewed", 1),
    (32, 16, 32, 4, 2, 1.0, "reroute", "skewed", 2),
    (24, 8, 16, 4, 2, 4.0, "drop", "skewed", 1),
    (20, 8, 32, 4, 1, 0.5, "drop", "uniform", 1),
    (32, 8, 16, 4, 3, 1.0, "reroute", "skewed", 1),
    (30, 8, 16, 3, 3, 0.6, "drop", "uniform", 1),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c)))
@pytest.mark.parametrize("split", [True, False])
def test_tiny_bit_exact(case, split):
    T, d, f, E, k, cf, pol, router, ct = case
    p = moe.MoeProblem(T, d, f, E, k, cf, pol)
    inputs, weights = _layer(p, SEED + T, router)
    run = run_moe(p, inputs, weights, config=_big_hbm("tiny"), split=split, chunk_tiles=ct)
    _check(run)
    assert (run.model.dispatch.dropped > 0) == (run.chip.counts["dropped"] > 0)


def test_tiny_any_order():
    """Random legal execution orders give the same bits (the tokens order every
    dependency)."""
    p = moe.MoeProblem(32, 16, 32, 4, 2, 1.0, "reroute")
    inputs, weights = _layer(p, SEED, "skewed")
    for seed in range(3):
        log.info("order seed %d", seed)
        _check(run_moe(p, inputs, weights, config=_big_hbm("tiny"), policy="random",
                       seed=seed, chunk_tiles=1, block_rows=5))


def test_drop_all_choices_gives_zero_rows():
    p = moe.MoeProblem(20, 8, 32, 4, 1, 0.5, "drop")
    run = run_moe(p, *_layer(p, SEED), config=_big_hbm("tiny"))
    lost = np.all(run.model.dispatch.expert < 0, axis=1)
    assert lost.any()
    assert not run.chip.out[lost].view(np.uint32).any()      # +0 in every lane


@pytest.mark.parametrize("router,split", [("uniform", True), ("skewed", True),
                                          ("skewed", False)])
def test_default_bit_exact(router, split):
    """default preset (16x16, 4 tiles), a layer small enough for the 2 MiB HBM."""
    p = moe.MoeProblem(64, 64, 128, 8, 2, 4.0 if router == "skewed" else 1.25, "drop")
    run = run_moe(p, *_layer(p, SEED, router), config="default", split=split, chunk_tiles=2)
    _check(run)
    cmds = [c.tensor for c in run.programs[1] if c.opcode == Opcode.TENSOR]
    assert any(c.indep for c in cmds)                  # W1 chunks overlap GELU
    pieces = sum(len(ps) for ps in run.placement)
    assert pieces > p.experts if router == "skewed" and split else pieces == p.experts


def test_placement_covers_every_row():
    cfg = get_preset("default")
    p = moe.MoeProblem(256, 256, 1024, 8, 2, 4.0, "drop")
    plan = cm.plan_moe(cfg, p)
    tpe = np.array([256, 40, 32, 42, 36, 39, 27, 40])
    offs = np.concatenate([[0], np.cumsum(tpe)[:-1]])
    for split in (True, False):
        placed = cm.place(plan, {"tokens_per_expert": tpe, "offsets": offs}, split=split)
        rows = sorted((s0, n, e) for ps in placed for e, s0, n in ps)
        assert [r[0] for r in rows] == list(np.cumsum([0] + [r[1] for r in rows])[:-1])
        assert sum(r[1] for r in rows) == tpe.sum()
        for s0, n, e in rows:
            assert offs[e] <= s0 and s0 + n <= offs[e] + tpe[e]


def test_layout_and_weight_image():
    cfg = get_preset("default")
    p = moe.MoeProblem(256, 256, 1024, 8, 2)
    plan = cm.plan_moe(cfg, p)
    a = plan.addr
    names = sorted(a, key=a.get)
    assert all(a[n] % 256 == 0 for n in names)
    assert (plan.fc, plan.sp, plan.P) == (2, 1, 16)            # F = 32 columns
    assert a["y"] + (p.tokens * p.top_k + 1) * p.d_model * 4 <= a["zeros"]
    rng = np.random.default_rng(SEED)
    w1 = rng.integers(0, 256, (256, 1024), dtype=np.uint8)
    w2 = rng.integers(0, 256, (1024, 256), dtype=np.uint8)
    img = cm._expert_image(plan, w1, w2).reshape(-1, 16, 16)
    # chunk 1 (columns 32..63): W1 tile (j=1, kc=3), then W2 tile (c=5, jj=0)
    base = 2 * 32                                   # tiles of chunk 0
    assert np.array_equal(img[base + 1 * 16 + 3], w1[48:64, 48:64])
    assert np.array_equal(img[base + 32 + 5 * 2 + 0], w2[32:48, 80:96])


def test_tiny_token_rows_are_beat_spaced():
    """tiny: R = 4 < 8-byte beats, so a token takes 2 activation rows."""
    plan = cm.plan_moe(get_preset("tiny"), moe.MoeProblem(16, 8, 16, 4, 2))
    assert (plan.sp, plan.P, plan.rank_stride) == (2, 8, 8)


@pytest.mark.parametrize("cfg_kw,problem,msg", [
    ({}, (16, 6, 16, 4, 2), "multiples"),
    ({}, (16, 8, 16, 5, 2), "experts do not fit"),
    ({}, (65, 8, 16, 4, 2), "dispatch unit"),
])
def test_fit_errors(cfg_kw, problem, msg):
    with pytest.raises(FitError, match=msg):
        cm.plan_moe(get_preset("tiny"), moe.MoeProblem(*problem))


def test_hbm_too_small_is_a_fit_error():
    p = moe.MoeProblem(256, 256, 1024, 8, 2)
    with pytest.raises(FitError, match="HBM"):
        run_moe(p, *_layer(p, SEED), config="default")
