"""The decode program (models.compiler_decode) on the golden chip model: bit-exact to the
program's arithmetic (models.decode.golden_decode), the chip's append equal to the host's,
every schedule the same, within the float64 bounds, and every check before a backend."""
import logging

import numpy as np
import pytest

from models import decode as dec
from models.compiler import FitError
from models.config import get_preset
from models.isa import Opcode
from models.runtime_decode import decode, prepare_decode, run_decode

SEED = 20261124
BOUNDS = {"int8": (0.9995, 0.01, 0.04), "fp8": (0.999, 0.01, 0.04)}   # cosine, RMS, max
log = logging.getLogger(__name__)


def _inputs(ctx, d, T, P, fmt, seed=SEED, spread=1.0):
    rng = np.random.default_rng(seed)
    log.info("seed %d", seed)
    ks = [rng.standard_normal((c, d)) * spread for c in ctx]
    vs = [rng.standard_normal((c, d)) for c in ctx]
    cache = dec.build_cache(ks, vs, tile=T, page_tokens=P, fmt=fmt, rng=rng)
    q, kn, vn = (rng.standard_normal((len(ctx), d)) for _ in range(3))
    return q, kn * spread, vn, cache


def _assert_overlap_legal(r):
    """The program follows the overlap rules on every tile and uses indep."""
    from models.tensor_core import overlap_errors
    cmds = [c for c in r.plan.commands if c.opcode == Opcode.TENSOR]
    assert any(c.tensor.indep for c in cmds) == r.plan.overlap
    for t in range(r.plan.cfg.soc.tiles):
        assert overlap_errors(r.plan.cfg, [c.tensor for c in cmds if c.tile == t]) == []


def _check_run(r, cache, kn, vn, fmt):
    """Bit-exact to golden_decode, pages equal to the host append, bounds vs float64."""
    want, _ = dec.append(cache, kn, vn)
    assert np.array_equal(r.cache.k_pages, want.k_pages)
    assert np.array_equal(r.cache.v_pages, want.v_pages)
    g = dec.golden_decode(r.cache, r.qc, r.s_q, r.plan.groups())
    assert np.array_equal(g.view(np.uint32), r.o.view(np.uint32))
    qd = np.stack([dec.dequantize(r.qc[i], fmt, r.s_q[i]) for i in range(len(r.s_q))])
    acc = dec.accuracy(r.o, dec.reference(r.cache, qd), r.cache)
    cos, rms, mx = BOUNDS[fmt]
    log.info("%s %s", fmt, acc)
    assert acc["cosine"] >= cos and acc["rms_rel"] <= rms and acc["max_rel"] <= mx, acc
    assert not r.result.tokens.any()                   # every token taken


@pytest.mark.parametrize("fmt", dec.FORMATS)
def test_tiny_splits_are_bit_exact_and_schedule_free(fmt):
    ctx = (16, 27, 3, 40)
    q, kn, vn, cache = _inputs(ctx, 8, 4, 8, fmt)
    r = run_decode(q, kn, vn, cache, config="tiny", max_blocks=2)
    assert {s.tile for s in r.plan.splits} == {0, 1} and r.plan.n_part >= 3
    assert any(len(g) == 1 for g in r.plan.groups())   # empty partials in the combine
    _check_run(r, cache, kn, vn, fmt)
    for seed in range(4):
        o = run_decode(q, kn, vn, cache, config="tiny", max_blocks=2, policy="random",
                       seed=seed, overlap=seed % 2 == 1)
        assert np.array_equal(o.o, r.o), seed
        if seed % 2:
            _assert_overlap_legal(o)
        else:
            assert np.array_equal(o.result.hbm, r.result.hbm), seed


def test_append_barrier_is_needed():
    """Without the BARRIER between the append's stores and the page loads some schedule
    reads a page before the new token lands (the tokens order nothing across queues)."""
    from models.chip import ChipModel, write_ring
    q, kn, vn, cache = _inputs((7, 3), 8, 4, 8, "int8")
    p = prepare_decode(q, kn, vn, cache, config="tiny", max_blocks=2)
    good = p.run("model").o
    cmds = list(p.plan.commands)
    second = [i for i, c in enumerate(cmds) if c.opcode == Opcode.BARRIER][1]
    del cmds[second]
    hbm = p.hbm.copy()
    n = write_ring(hbm, p.ring_addr, cmds) + 1
    from models.compiler_decode import read_output
    outs = set()
    for seed in range(40):
        res = ChipModel(p.cfg, hbm.copy(), policy="random", seed=seed).run_ring(
            p.ring_addr, n, 0, n - 1)
        outs.add(read_output(p.plan, res.hbm).tobytes())
    assert len(outs) > 1 and good.tobytes() in outs


@pytest.mark.parametrize("fmt, overlap", [
    ("int8", False), pytest.param("fp8", False, marks=pytest.mark.nightly),
    pytest.param("int8", True, marks=pytest.mark.nightly)])
def test_default_shape_accuracy(fmt, overlap):
    """d 128 on `default` (16x16 arrays): batch 8, contexts 15..700 over several pages;
    with ``overlap`` the same result from an ``indep`` program that follows the overlap
    rules (``models.tensor_core.overlap_errors``)."""
    ctx = (15, 31, 64, 100, 257, 400, 511, 700)
    q, kn, vn, cache = _inputs(ctx, 128, 16, 32, fmt, seed=SEED + 1)
    r = run_decode(q, kn, vn, cache, config="default", overlap=overlap)
    assert len(r.plan.splits) > 8
    _check_run(r, cache, kn, vn, fmt)
    _assert_overlap_legal(r)


def test_peaked_scores_stay_within_bounds():
    """Large logits (one key dominates each split): the merges' rescaling stays exact
    enough."""
    q, kn, vn, cache = _inputs((20, 45), 8, 4, 8, "int8", seed=SEED + 2, spread=3.0)
    _check_run(run_decode(q, kn, vn, cache, config="tiny", max_blocks=4), cache, kn, vn,
               "int8")


def test_decode_returns_o_and_cache():
    q, kn, vn, cache = _inputs((5, 9), 8, 4, 8, "int8")
    o, new = decode(q, kn, vn, cache, config="tiny")
    assert o.shape == (2, 8) and o.dtype == np.float32 and new.lengths == [6, 10]
    assert cache.lengths == [5, 9]                     # the input cache is not modified


def test_checks_before_any_backend(monkeypatch):
    import tb.runner
    monkeypatch.setattr(tb.runner, "run", lambda *a, **k: pytest.fail("simulator started"))
    q, kn, vn, cache = _inputs((5, 9), 8, 4, 8, "int8")
    with pytest.raises(ValueError, match="q must have shape"):
        run_decode(q[:1], kn, vn, cache, backend="rtl")
    bad = q.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        run_decode(bad, kn, vn, cache, backend="rtl")
    with pytest.raises(TypeError, match="PagedKVCache"):
        run_decode(q, kn, vn, {"pages": 1}, backend="rtl")
    with pytest.raises(FitError, match="array size"):
        run_decode(q, kn, vn, cache, config="default", backend="rtl")   # tile 4 vs 16
    big = _inputs((3000, 9), 8, 4, 8, "int8")
    with pytest.raises(FitError, match="hbm.total_bytes"):
        run_decode(*big, config="tiny", backend="rtl")
    q2, kn2, vn2, c2 = _inputs((5,), 8, 4, 8, "int8")
    full = c2.copy()
    full.free = []
    full.lengths = [8]                                  # the last page is full
    with pytest.raises(dec.CacheFull):
        run_decode(q2, kn2, vn2, full, backend="rtl")
    cfg = get_preset("tiny")
    if not cfg.systolic.fp8:                            # pragma: no cover (tiny has FP8)
        return
    from dataclasses import replace
    int8_only = replace(cfg, systolic=replace(cfg.systolic, fp8=False))
    q3, kn3, vn3, c3 = _inputs((5, 9), 8, 4, 8, "fp8")
    with pytest.raises(FitError, match="no FP8 datapath"):
        run_decode(q3, kn3, vn3, c3, config=int8_only, backend="rtl")
