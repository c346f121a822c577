"""Host register block (rtl/regs/jalapeno.rdl -> rtl/regs/block.py) on both simulators.

Each preset builds the map its config gives (tiny: 2 tiles, default: 4).
"""
import pytest

from tests.conftest import assert_passed
from tests.sim.test_hbm_sim import time0_x_hazards

pytestmark = pytest.mark.sim


@pytest.mark.parametrize("preset", [pytest.param("tiny", marks=pytest.mark.smoke), "default"])
def test_host_regs(sim, preset, sim_run):
    """Reset values, rw/ro/w1c/strobes/counters, WSTRB, SLVERR, stalls, raw AW/W orders."""
    assert_passed(sim_run("host_regs", preset, sim, "tb.regs.test_regs"))


@pytest.mark.smoke
@pytest.mark.parametrize("preset", ["tiny", "jalapeno"])
def test_host_regs_x_free_at_time0(preset):
    """No ``always @*`` block Icarus could leave X from time 0 (tests/sim/test_hbm_sim.py)."""
    from amaranth.back import verilog

    from models.config import get_preset
    from rtl.blocks import get_block
    text = verilog.convert(get_block("host_regs").factory(get_preset(preset)),
                           name="host_regs", emit_src=False)
    assert time0_x_hazards(text) == []
