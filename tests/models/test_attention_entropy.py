"""Accuracy of the attention program on heads of controlled row entropy (issue 14, item 4).

Targets (vs float64 softmax attention of the same quantized inputs): INT8 cosine >=
0.9995 and FP8 E4M3 cosine >= 0.999 on every head of ``models.attention_entropy.ENTROPY_SET``,
RMS / max error relative to max|V| within 0.01 / 0.04. The golden model is bit-exact to
the RTL (tests/sim/test_attention_sim.py), so these are the hardware's figures.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from models import attention as att
from models import attention_entropy as ae
from models.config import get_preset
from models.tensor_core import TensorCoreModel

SEED = 20261130
CFG = get_preset("default")
TARGET = {"int8": 0.9995, "fp8": 0.999}


@pytest.mark.parametrize("keys,entropy", [(128, 0.3), (512, 0.7), (512, 0.95)])
def test_entropy_head_hits_its_target(keys, entropy):
    p = att.AttentionProblem(16, keys, 32)
    head, h = ae.entropy_head(p, SEED, entropy)
    print(f"seed {SEED}: keys {keys} target {entropy} measured {h:.4f}")
    assert abs(h - entropy) <= 0.01
    assert abs(float(ae.row_entropy(head).mean()) - h) < 1e-12


def test_row_entropy_of_uniform_and_one_hot_rows():
    p = att.AttentionProblem(2, 8, 16)
    z = np.zeros((8, 16), np.uint8)
    head = att.QuantizedHead(p, np.zeros((2, 16), np.uint8), z, z, 1.0, 1.0, 1.0)
    assert np.allclose(ae.row_entropy(head), 1.0)          # all scores equal: uniform
    q = np.zeros((2, 16), np.int8)
    k = np.zeros((8, 16), np.int8)
    q[:, 0] = 127
    k[3, 0] = 127
    head = att.QuantizedHead(p, q.view(np.uint8), k.view(np.uint8), z, 1.0, 1.0, 1.0)
    assert np.all(ae.row_entropy(head) < 1e-3)              # one key takes the row


def _case_id(c):
    return f"{c.keys}k-H{c.entropy}"


@pytest.mark.parametrize("path", att.PATHS)
@pytest.mark.parametrize("case", ae.ENTROPY_SET, ids=_case_id)
def test_entropy_set_meets_the_cosine_target(case, path):
    """Every head of the set (64 runs, ~12 s of CPU on 2 workers)."""
    r = ae.run_case(CFG, case, path, SEED)
    print(f"seed {SEED}: {r}")
    assert abs(r["entropy"] - case.entropy) <= 0.01 or case.entropy >= 0.99
    assert r["cosine"] >= TARGET[path], r
    assert r["rms_rel"] <= 0.01 and r["max_rel"] <= 0.04 and r["nan"] == 0, r


def test_without_block_scale_a_diffuse_int8_head_misses_the_target():
    """The check can fail: the same program with bscale cleared (P = round(127 p)
    relative to the running max) drops below 0.9995 on a diffuse 4096-key head."""
    case = ae.EntropyCase(4096, 0.8)
    p = att.AttentionProblem(case.queries, case.keys, case.head_dim)
    head, _ = ae.entropy_head(p, SEED, case.entropy)
    cfg = ae.accuracy_config(CFG, case)
    pl = att.plan(cfg, p)
    model = TensorCoreModel(cfg)
    for mem, addr, rows in att.sram_images(pl, head):
        model.write(mem, addr, rows)
    assert model.execute([replace(c, bscale=0) for c in att.program(pl, head)]) == 0
    a, n = att.output_rows(pl)
    cos = att.cosine(att.output(pl, model.acc[a:a + n]), att.reference(head))
    print(f"seed {SEED}: cosine without block scale {cos:.6f}")
    assert cos < TARGET["int8"]


def test_key_scales_ignore_padding_rows():
    p = att.AttentionProblem(4, 8, 16, kv_len=5)
    rng = np.random.default_rng(SEED)
    q, k, v = (rng.standard_normal((n, 16)) for n in (4, 8, 8))
    k2, v2 = k.copy(), v.copy()
    k2[5:], v2[5:] = 1e6, -1e6                    # garbage in the masked keys
    a, b = att.quantize_head(p, q, k, v), att.quantize_head(p, q, k2, v2)
    assert a.s_k == b.s_k and a.s_v == b.s_v
    assert np.array_equal(a.k[:5], b.k[:5]) and np.array_equal(a.v[:5], b.v[:5])
    assert np.all(b.k.view(np.int8)[5:] == 127) and np.all(b.v.view(np.int8)[5:] == -127)
    assert np.array_equal(att.run_model(CFG, a)[0], att.run_model(CFG, b)[0])


def test_accuracy_config_rejects_what_16_bit_addresses_cannot_hold():
    with pytest.raises(ValueError, match="16-bit"):
        ae.accuracy_config(CFG, ae.EntropyCase(8192, 0.5, head_dim=128))


def test_p_representations_in_float64():
    """Why the block scale (docs/attention.md): float64 emulation, 4096 keys, Gaussian
    scores of std 1.5 (normalized entropy ~0.87), 16-key blocks, 64 rows."""
    rng = np.random.default_rng(SEED)
    s = rng.standard_normal((64, 4096)) * 1.5
    v = rng.standard_normal((4096, 64))
    p = np.exp(s - s.max(1, keepdims=True))
    ref = (p / p.sum(1, keepdims=True)) @ v
    cos = {mode: att.cosine(ae.emulate_p(s, v, 16, mode), ref)
           for mode in ("running", "u8", "block")}
    print(f"seed {SEED}: {cos}")
    assert cos["running"] < cos["u8"] < cos["block"]
    assert cos["running"] < 0.9995 and cos["block"] > 0.9999
