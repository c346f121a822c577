"""models.runtime backend="rtl": the same compiled GEMM and attention heads on the SoC RTL
(tiny, Icarus) give the same results as backend="model"; shapes that do not fit fail
before any build."""
import numpy as np
import pytest

from models.compiler import FitError
from models.runtime import run_gemm

pytestmark = pytest.mark.sim


def test_rtl_backend_matches_model():
    rng = np.random.default_rng(11)
    a = rng.integers(-128, 128, (8, 12), dtype=np.int64)
    b = rng.integers(-128, 128, (12, 6), dtype=np.int64)
    model = run_gemm(a, b, config="tiny")
    rtl = run_gemm(a, b, config="tiny", backend="rtl", sim="icarus", seed=1)
    assert rtl.backend == "rtl" and rtl.cycles and rtl.cycles > 0
    assert rtl.c.dtype == model.c.dtype == np.int32
    assert np.array_equal(rtl.c, model.c)
    assert np.array_equal(rtl.c, (a @ b).astype(np.int32))
    assert rtl.result.completed == model.result.completed == len(rtl.commands)


def test_rtl_backend_rejects_unfit_shape_before_building(monkeypatch):
    import tb.runner
    monkeypatch.setattr(tb.runner, "run", lambda *a, **k: pytest.fail("simulator started"))
    with pytest.raises(FitError):
        run_gemm(np.ones((4, 100_000), np.int8), np.ones((100_000, 4), np.int8),
                 config="tiny", backend="rtl", sim="icarus")


def test_rtl_backend_attention_matches_model(sim):
    """Two causal heads of seq 8, d 4 on the SoC RTL (Icarus and Verilator), streamed:
    2-row query blocks (two per unit, two units per head, units of both heads on each
    tile), key groups of one key block (K and V stream through the two weight slots),
    ping-pong with indep. O equals the chip model's bit for bit (which equals the
    single-tile program: tests/models/test_attention_stream.py) and stays within 3x the
    INT8 quantization error seen for this seed (0.0097) of float64 attention."""
    from models.rtl_backend import run_rtl
    from models.runtime import prepare_attention
    rng = np.random.default_rng(12)
    q, k, v = (rng.standard_normal((2, 8, 4)) for _ in range(3))
    prep = prepare_attention(q, k, v, "causal", config="tiny", mq=2, g=1, nb=2)
    model = prep.run("model")
    tiles = [t for sh in model.job.heads for t in sh.unit_tiles]
    assert sorted(tiles) == [0, 0, 1, 1] and model.job.heads[0].plan.ngroups == 2
    (r,) = run_rtl(prep.cfg, [prep.rtl_job()], sim=sim, seed=1,
                   verilator_opt="-O0")                 # the regression's build of the chip
    rtl = prep.finish(r.result, "rtl", r)
    assert rtl.backend == "rtl" and rtl.cycles and rtl.cycles > 0
    assert rtl.o.dtype == np.float32 and rtl.o.shape == q.shape
    assert np.array_equal(rtl.o.view(np.uint32), model.o.view(np.uint32))
    s = q @ k.transpose(0, 2, 1) / np.sqrt(4)
    s = np.where(np.tril(np.ones((8, 8), bool)), s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    ref = (p / p.sum(-1, keepdims=True)) @ v
    assert np.max(np.abs(rtl.o - ref)) < 0.03, np.max(np.abs(rtl.o - ref))   # 0.0097 seen
    print(f"streamed attention on {sim}: {len(rtl.job.commands)} commands, "
          f"{rtl.cycles} cycles")
