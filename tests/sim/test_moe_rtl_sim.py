"""The MoE layer on the SoC RTL (issue 15): program 1 (router GEMM, TOPK, softmax,
DISPATCH) and program 2 (indexed gathers, chunked expert FFNs with indep W1 chunks,
combine by STATE_LOAD + RESCALE) as two simulator runs, the HBM image of the first
feeding the second (models.runtime_moe), bit-exact against models.moe.moe_forward:
ranking, softmax weights, slot table, slot_token list, counters, y and out."""
import logging

import numpy as np
import pytest

from models import moe
from models.runtime_moe import compare, run_moe

pytestmark = pytest.mark.sim
DATA_SEED = 1124
log = logging.getLogger(__name__)


def _run(sim, request, shape, cf, overflow, router, **kw):
    seed = request.config.getoption("--seed") or 1
    log.info("data seed %d, simulator seed %d", DATA_SEED, seed)
    p = moe.MoeProblem(*shape, cf, overflow)
    x, r, ex = moe.random_moe(p, np.random.default_rng(DATA_SEED), router=router)
    inputs, weights = moe.quantize_moe(x, r, ex)
    run = run_moe(p, inputs, weights, config="tiny", backend="rtl", sim=sim, seed=seed,
                  verilator_opt="-O0", check=False, **kw)   # the regression's build
    assert compare(run.model, run.chip, run.plan) == [], (DATA_SEED, seed)
    log.info("cycles %s, tokens_per_expert %s, dropped %d, placement %s", run.cycles,
             run.chip.counts["tokens_per_expert"], run.chip.counts["dropped"], run.placement)
    return run


def _reroute_layer(sim, request):
    """tiny: 16 tokens, d_model 8, d_ff 16 in two chunks (indep W1), 4 experts, top-2,
    skewed router, reroute with capacity factor 1.0: choices rerouted and one dropped."""
    run = _run(sim, request, (16, 8, 16, 4, 2), 1.0, "reroute", "skewed", chunk_tiles=2)
    d = run.model.dispatch
    assert d.rerouted.any() and d.dropped > 0
    assert any(c.tensor.indep for c in run.programs[1] if c.tensor is not None)


def test_moe_rtl(sim, request):
    """The reroute layer (:func:`_reroute_layer`) on Verilator in every tier (two SoC runs
    in one process: the second reuses the first's Verilog, tb.runner._emit). Icarus takes
    ~4 min for it (two SoC compiles and runs), over the regression's budget: it runs in
    the nightly tier (test_moe_rtl_icarus_long), as do the bigger layers below. The units
    it combines (TOPK / STATE_LOAD, indexed DMA, DISPATCH) have their own tests in
    ``make test`` on both simulators, and the chip model runs the same programs in
    tests/models/test_compiler_moe.py."""
    if sim == "icarus":
        pytest.skip("Icarus runs this layer in the nightly tier (test_moe_rtl_icarus_long)")
    _reroute_layer(sim, request)


@pytest.mark.nightly
def test_moe_rtl_icarus_long(sim, request):
    """Nightly, Icarus: the layer `make test` runs on Verilator only (test_moe_rtl)."""
    if sim != "icarus":
        pytest.skip("Verilator runs this layer in every tier (test_moe_rtl)")
    _reroute_layer(sim, request)


@pytest.mark.nightly
@pytest.mark.parametrize("router,k,cf", [("uniform", 2, 0.75), ("skewed", 1, 4.0)])
def test_moe_rtl_nightly(sim, request, router, k, cf):
    """tiny: 32 tokens, d_ff 16 in two chunks, token blocks of at most 8 rows; uniform
    top-2 with drops, skewed top-1 with the hot expert split over both tiles."""
    run = _run(sim, request, (32, 8, 16, 4, k), cf, "drop", router, chunk_tiles=2,
               block_rows=8)
    assert (run.chip.counts["dropped"] > 0) == (cf < 1)
    if router == "skewed":
        assert sum(len(ps) for ps in run.placement) > len({e for ps in run.placement
                                                          for e, _, _ in ps})
