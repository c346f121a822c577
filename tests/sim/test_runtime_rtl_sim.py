"""models.runtime backend="rtl": the same compiled GEMM on the SoC RTL (tiny, Icarus)
gives the same C as backend="model"; shapes that do not fit fail before any build."""
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
