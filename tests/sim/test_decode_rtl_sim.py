"""Decode on the SoC RTL (tiny, both simulators): one step of a batch against a paged KV
cache, INT8 and FP8 caches in one simulator process, bit-exact against backend="model"
(O and the pages the chip appended to) and within the accuracy bounds of float64."""
import logging

import numpy as np
import pytest

from models import decode as dec
from models.rtl_backend import run_rtl
from models.runtime_decode import prepare_decode

pytestmark = pytest.mark.sim
DATA_SEED = 1124
BOUNDS = {"int8": (0.9995, 0.01, 0.04), "fp8": (0.999, 0.01, 0.04)}   # cosine, RMS, max


def _step(fmt: str, rng: np.random.Generator, ctx: tuple, overlap: bool = False):
    """Sequences of contexts ``ctx`` (a multiple of 8 appends into a new page), d 8,
    pages of 8 tokens taken from the end of the pool, splits of at most 2 key blocks."""
    d = 8
    ks = [rng.standard_normal((c, d)) for c in ctx]
    vs = [rng.standard_normal((c, d)) for c in ctx]
    pages = sum(c // 8 + 1 for c in ctx)
    cache = dec.build_cache(ks, vs, tile=4, page_tokens=8, fmt=fmt,
                            order=list(range(pages))[::-1])
    q, kn, vn = (rng.standard_normal((len(ctx), d)) for _ in range(3))
    return prepare_decode(q, kn, vn, cache, config="tiny", max_blocks=2, overlap=overlap)


def _check(sim: str, request, ctx: tuple, fmts: tuple) -> None:
    seed = request.config.getoption("--seed") or 1
    log = logging.getLogger(__name__)
    log.info("data seed %d, simulator seed %d", DATA_SEED, seed)
    rng = np.random.default_rng(DATA_SEED)
    # the FP8 step runs the overlap program (indep S matmuls beside the merge tree)
    preps = [_step(fmt, rng, ctx, overlap=fmt == "fp8") for fmt in fmts]
    assert any(list(t) != sorted(t) for t in preps[0].plan.tables)      # out of order
    assert {s.tile for s in preps[0].plan.splits} == {0, 1}
    assert max(s.index for s in preps[0].plan.splits) >= 1              # a combine
    runs = run_rtl(preps[0].cfg, [p.rtl_job() for p in preps], sim=sim, seed=seed,
                   verilator_opt="-O0")            # the regression's build of the chip
    for p, r in zip(preps, runs):
        rtl = p.finish(r.result, "rtl", r)
        model = p.run("model")
        fmt = p.plan.fmt
        assert np.array_equal(rtl.o.view(np.uint32), model.o.view(np.uint32)), fmt
        assert np.array_equal(rtl.cache.k_pages, p.expected.k_pages), fmt
        assert np.array_equal(rtl.cache.v_pages, p.expected.v_pages), fmt
        qd = np.stack([dec.dequantize(p.qc[i], fmt, p.s_q[i]) for i in range(len(p.s_q))])
        acc = dec.accuracy(rtl.o, dec.reference(p.expected, qd), p.expected)
        cos, rms, mx = BOUNDS[fmt]
        assert acc["cosine"] >= cos and acc["rms_rel"] <= rms and acc["max_rel"] <= mx, acc
        log.info("%s: %d cycles, %s", fmt, rtl.cycles, acc)


@pytest.mark.smoke
def test_decode_rtl(sim, request):
    """Batch 2, contexts 8 (its new token opens a new page) and 5, pages (1, 0): INT8 on
    both simulators, FP8 with the overlap program too on Verilator (Icarus runs ~200
    cycles/s on this chip)."""
    _check(sim, request, (8, 5), ("int8",) if sim == "icarus" else ("int8", "fp8"))


@pytest.mark.nightly
def test_decode_rtl_batch3(sim, request):
    """Batch 3, contexts 16, 27, 3 (8 splits over both tiles, up to 4 partials per
    sequence), INT8 and FP8."""
    _check(sim, request, (16, 27, 3), ("int8", "fp8"))
