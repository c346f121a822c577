"""Tensor core regression on both simulators (docs/tensor_core.md has the test plan)."""
import pytest

from tests.conftest import assert_passed

pytestmark = pytest.mark.sim
#: tiny_int8: the same tiny chip without the FP8 datapath (INT8-only PEs, NO_FP8 errors)
PRESETS = [pytest.param("tiny", marks=pytest.mark.smoke), pytest.param("tiny_int8"),
           pytest.param("default", marks=pytest.mark.full)]


@pytest.mark.parametrize("preset", PRESETS)
def test_tensor_core(sim, preset, sim_run):
    """INT8/FP8 GEMM tile sequences, hazards, wrap-around, every error code, host port,
    cycle model, mixed matmul + vector programs, reset mid-traffic (MATMUL and VECTOR;
    untouched SRAM rows compared), self-check; indep overlap (tb/tensor/overlap.py:
    random ping-pong programs, attention-like two blocks faster than fenced, bank
    conflicts, reset during overlap; tiny, other presets nightly)."""
    assert_passed(sim_run("tensor_core", preset, sim, "tb.tensor.test_tensor_core"))


@pytest.mark.smoke
def test_tensor_core_uvm(sim, sim_run):
    """pyuvm: error, GEMM and vector-op programs until the covergroup closes; the same
    environment with i_cmd gaps and o_rd backpressure (factory override)."""
    assert_passed(sim_run("tensor_core", "tiny", sim, "tb.tensor.uvm"))


@pytest.mark.smoke
def test_tensor_core_faulty_writer_is_caught(sim, sim_run):
    """A result writer that corrupts one word must make the SRAM check fail."""
    from tb.tensor.faulty import faulty_tensor_core
    assert_passed(sim_run("tensor_core", "tiny", sim, "tb.tensor.test_faulty",
                          factory=faulty_tensor_core, variant="faulty"))

