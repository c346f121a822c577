"""pyuvm environment of the chip top (tb/soc/uvm.py) on both simulators: random race-free
command streams, every bad input, soft and hard resets, against models.chip, with coverage.

Tiny preset with a short watchdog (``soc.watchdog_cycles`` 4096 instead of 65536) so that
the wait-never-signalled case costs seconds on Icarus; a custom config gets its own build.
"""
import dataclasses

import pytest

from models.config import get_preset
from tests.conftest import assert_passed, cocotb_tests_except

pytestmark = pytest.mark.sim


def soc_uvm_config():
    tiny = get_preset("tiny")
    return dataclasses.replace(tiny, soc=dataclasses.replace(tiny.soc, watchdog_cycles=4096))


def test_soc_uvm(sim, sim_run):
    """SocRandomTest + SocBadInputTest (tb.soc.test_soc_uvm), tiny. Icarus runs
    SocRandomTest here and both in the nightly tier (test_soc_uvm_nightly): the bad-input
    sequence is ~75k cycles, ~2 min at Icarus' ~700 cycles/s (docs/testplan.md)."""
    module = "tb.soc.test_soc_uvm"
    cases = cocotb_tests_except(module, ("SocBadInputTest",)) if sim == "icarus" else None
    assert_passed(sim_run("soc", soc_uvm_config(), sim, module, testcase=cases))


@pytest.mark.nightly
def test_soc_uvm_nightly(sim, sim_run):
    """The same with the nightly tier's trial counts (more and longer random programs)."""
    assert_passed(sim_run("soc", soc_uvm_config(), sim, "tb.soc.test_soc_uvm", tier="nightly"))
