"""attention() on the golden chip model (models/runtime.py, models/compiler_attention.py).

Each head must equal, bit for bit, the same head run on a lone tensor-core model whose
SRAMs were written directly (``models.attention.run_model``: no DMA, no tokens, no
ring), and be close to the float64 softmax reference of the quantized inputs.
"""
import dataclasses

import numpy as np
import pytest

from models import attention as att
from models.compiler import FitError
from models.config import get_preset
from models.isa import Opcode
from models.runtime import attention, mask_params, run_attention


#: The default chip built without the FP8 datapath.
INT8_ONLY = dataclasses.replace(get_preset("default"), systolic=dataclasses.replace(
    get_preset("default").systolic, fp8=False))


def _qkv(rng, h, sq, sk, d):
    return (rng.standard_normal((h, sq, d)), rng.standard_normal((h, sk, d)),
            rng.standard_normal((h, sk, d)))


@pytest.mark.parametrize("preset, h, sq, sk, d, mask, path", [
    ("tiny", 1, 7, 5, 4, None, "int8"),
    ("tiny", 3, 10, 13, 8, None, "int8"),           # 3 heads on 2 tiles: SRAM reuse
    ("tiny", 2, 9, 9, 4, "causal", "fp8"),
    ("tiny", 4, 6, 11, 8, "pad7", "int8"),
    ("default", 5, 40, 70, 32, "causal", "int8"),
])
@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("schedule", ["stream", "whole"])
def test_heads_match_single_tile_model(preset, h, sq, sk, d, mask, path, seed, schedule):
    cfg = get_preset(preset)
    rng = np.random.default_rng(seed)
    q, k, v = _qkv(rng, h, sq, sk, d)
    if mask == "pad7":
        mask = np.zeros((sq, sk), bool)
        mask[:, 7:] = True
    run = run_attention(q, k, v, mask, config=preset, path=path, policy="random", seed=seed,
                        schedule=schedule)
    assert run.o.shape == (h, sq, d) and run.o.dtype == np.float32
    assert run.result.completed == len(run.job.commands) and not run.result.tokens.any()
    for i, head in enumerate(run.heads):
        alone, _, _, _ = att.run_model(cfg, head, mq=_mq(run.job, i))
        assert np.array_equal(alone.view(np.uint32), run.o[i].view(np.uint32)), \
            f"head {i}, seed {seed}"
        acc = att.accuracy(run.o[i], att.reference(head), head)
        assert acc["nan"] == 0 and acc["rms_rel"] < 0.01 and acc["max_rel"] < 0.05, acc
    if schedule == "whole":
        tiles = {hp.tile for hp in run.job.heads}
        assert tiles == set(range(min(h, cfg.soc.tiles)))
    else:
        units = sum(len(sh.plan.units) for sh in run.job.heads)
        tiles = {t for sh in run.job.heads for t in sh.unit_tiles}
        assert tiles == set(range(min(units, cfg.soc.tiles)))


def _mq(job, i):
    """Query block rows of head i (the grid the single-tile program must use)."""
    return min(job.heads[i].plan.mq, job.heads[i].plan.problem.seq_q)


def test_single_head_and_fully_masked():
    rng = np.random.default_rng(5)
    q, k, v = (x[0] for x in _qkv(rng, 1, 6, 8, 4))
    o = attention(q, k, v, np.ones((6, 8), bool), config="tiny")
    assert o.shape == (6, 4) and np.all(o == 0)
    o = attention(q, k, v, config="tiny")
    head = att.quantize_head(att.AttentionProblem(6, 8, 4), q, k, v)
    assert np.array_equal(o, att.run_model(get_preset("tiny"), head)[0])


def test_per_head_masks():
    rng = np.random.default_rng(6)
    q, k, v = _qkv(rng, 2, 5, 5, 4)
    masks = np.zeros((2, 5, 5), bool)
    masks[0] = np.triu(np.ones((5, 5), bool), 1)             # causal
    run = run_attention(q, k, v, masks, config="tiny")
    assert [h.problem.causal for h in run.heads] == [True, False]
    assert run.job.commands[-1].opcode == Opcode.IRQ


@pytest.mark.parametrize("live", [np.arange(3, 8), np.array([0, 2, 5, 7]), np.arange(0, 5)])
def test_key_padding_anywhere(live):
    """Left, scattered and right key padding (every query masks the same keys): O within
    the INT8 bounds of float64 attention over the live keys only."""
    rng = np.random.default_rng(7)
    q, k, v = (x[0] for x in _qkv(rng, 1, 6, 8, 4))
    mask = np.ones((6, 8), bool)
    mask[:, live] = False
    run = run_attention(q, k, v, mask, config="tiny")
    (head,) = run.heads
    assert head.problem.kv_len == (None if len(live) == 8 else len(live))
    s = q @ k[live].T / np.sqrt(4)
    p = np.exp(s - s.max(axis=1, keepdims=True))
    ref = (p / p.sum(axis=1, keepdims=True)) @ v[live]
    err = np.abs(run.o - ref) / np.max(np.abs(v))
    assert np.sqrt(np.mean(err ** 2)) < 0.01 and err.max() < 0.05, err.max()


@pytest.mark.parametrize("mask, want", [
    (None, (False, None)), ("causal", (True, None)),
    (np.triu(np.ones((4, 6), bool), 1), (True, None)),
    (np.tile(np.arange(6) >= 4, (4, 1)), (False, 4)),
    (np.triu(np.ones((4, 6), bool), 1) | (np.arange(6) >= 3), (True, 3)),
    (np.ones((4, 6), bool), (False, 0)),
])
def test_mask_params(mask, want):
    assert mask_params(mask, 4, 6) == want


@pytest.mark.parametrize("mask, exc, msg", [
    (np.tile(np.arange(6) < 2, (4, 1)), NotImplementedError, "causal.*right padding"),
    (np.eye(4, 6, dtype=bool), NotImplementedError, "this mask is neither"),
    (np.zeros((4, 5), bool), ValueError, r"boolean 4x6 \(True = masked\), got bool \(4, 5\)"),
    (np.zeros((4, 6), int), ValueError, "must be boolean"),
    ("future", ValueError, "mask must be None, 'causal' or a boolean array, got 'future'"),
])
def test_mask_errors(mask, exc, msg):
    with pytest.raises(exc, match=msg):
        mask_params(mask, 4, 6)


def test_attention_errors_before_running():
    rng = np.random.default_rng(7)
    q, k, v = (x[0] for x in _qkv(rng, 1, 8, 8, 4))
    with pytest.raises(ValueError, match=r"q must be \[H,\] Sq x d and k, v \[H,\] Sk x d"):
        attention(q, k[:, :3], v, config="tiny")
    with pytest.raises(FitError, match="head 0 does not fit preset 'default': preset "
                                       "'default' has no FP8 datapath"):
        attention(np.zeros((16, 16)), np.zeros((16, 16)), np.zeros((16, 16)),
                  config=INT8_ONLY, path="fp8")
    with pytest.raises(FitError, match="head_dim 6 must be a multiple of the array size 4"):
        attention(np.zeros((4, 6)), np.zeros((4, 6)), np.zeros((4, 6)), config="tiny")
    with pytest.raises(FitError, match=r"K and V need \d+ weight rows, the weight SRAM has 1024"):
        attention(np.zeros((4, 64)), np.zeros((600, 64)), np.zeros((600, 64)), config="tiny",
                  schedule="whole")
    with pytest.raises(FitError, match=r"1 attention heads do not fit preset 'tiny': they need "
                                       r"\d+ bytes of HBM \(operands, outputs and a ring of "
                                       r"\d+ commands\), hbm.total_bytes is 32768"):
        attention(np.zeros((4, 64)), np.zeros((600, 64)), np.zeros((600, 64)), config="tiny")
    with pytest.raises(FitError, match=r"two key groups of one key block need 1040 weight rows, "
                                       r"the weight SRAM has 1024 \(d 260\)"):
        attention(np.zeros((4, 260)), np.zeros((4, 260)), np.zeros((4, 260)), config="tiny")
    with pytest.raises(ValueError, match="schedule must be one of"):
        attention(q, k, v, config="tiny", schedule="fast")
    big = np.zeros((12, 64, 32))
    with pytest.raises(FitError, match="12 attention heads do not fit preset 'tiny': .*"
                                       "hbm.total_bytes is 32768"):
        attention(big, big, big, config="tiny")
    with pytest.raises(ValueError, match="sim must be 'verilator' or 'icarus', got 'vcs'"):
        attention(q, k, v, config="tiny", backend="rtl", sim="vcs")
    with pytest.raises(FitError):                      # shape checks come first
        attention(big, big, big, config="tiny", backend="rtl")
