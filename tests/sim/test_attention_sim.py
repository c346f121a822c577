"""Attention heads on the tensor core: bit-exact to the golden model on both simulators."""
import pytest

from tests.conftest import assert_passed

pytestmark = pytest.mark.sim


@pytest.mark.smoke
def test_attention(sim, sim_run):
    """INT8 and FP8 E4M3 heads (online softmax over several key blocks, query blocks,
    causal and padding masks), fully masked rows, NaN propagation, checker self-check
    (tiny preset)."""
    assert_passed(sim_run("tensor_core", "tiny", sim, "tb.attention.test_attention"))
