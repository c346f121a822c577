# amaranth: UnusedElaboratable=no
"""Emit-once Verilog of the systolic array and the vector unit (rtl.lib.shared).

The array's R x C PEs become one module per PE class and configuration (the test-only
FaultyPE its own), the vector unit's L lanes one module per lane kind, and no component
created only for its signature warns (the files that create them carry the
``UnusedElaboratable=no`` pragma; this file too, for the components it makes only to
ask their module name). Port names follow docs/adding_a_block.md.
"""
import gc
import re
import warnings

import pytest
from amaranth.hdl import UnusedElaboratable

from models.config import get_preset
from models.fp8 import acc_fixed_bits
from rtl.fp.fixed_to_f32 import FixedToF32
from rtl.lib.shared import module_name
from rtl.lib.verilog import convert
from rtl.systolic.array import SystolicArray
from rtl.systolic.column import SystolicColumn
from rtl.systolic.pe import ProcessingElement
from rtl.vector.lane import LaneCompute, LaneOutput
from rtl.vector.unit import VectorUnit
from tb.systolic.faulty import FaultyPE, FaultySystolicArray

PREFIXES = ("i_", "o_", "m_", "s_")


def _top_modules(text: str) -> list[str]:
    """Names of the modules that are not a flattened submodule (``\\top.sub``)."""
    return sorted(re.findall(r"^module (\w+)\(", text, re.M))


def _convert(factory, name):
    """Verilog of ``factory()``; fails on any UnusedElaboratable warning (they are
    raised when the unused components are collected, so collect inside; and first
    collect what earlier tests left, whose warnings are not this design's)."""
    gc.collect()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always", UnusedElaboratable)
        text = convert(factory(), name)
        gc.collect()
    unused = [str(w.message) for w in seen if issubclass(w.category, UnusedElaboratable)]
    assert unused == []
    return text


@pytest.mark.parametrize("preset", ["tiny", "default"])
def test_array_one_pe_module(preset):
    """C instances of one column module, which holds R instances of one PE module
    (and, FP8, one instance of the shared rounding module)."""
    cfg = get_preset(preset).systolic
    text = _convert(lambda: SystolicArray(cfg), "systolic_array")
    pe = module_name(ProcessingElement(cfg), cfg)
    col = module_name(SystolicColumn(cfg), cfg)
    # FP8 arrays round each column once: one shared rounding module, one per column
    rnd = [module_name(FixedToF32(acc_fixed_bits(cfg.rows)), acc_fixed_bits(cfg.rows))
           ] if cfg.fp8 else []
    assert _top_modules(text) == sorted([pe, col, "systolic_array"] + rnd)
    assert len(re.findall(rf"^\s+{col} col_\d+ \(", text, re.M)) == cfg.cols
    assert len(re.findall(rf"^\s+{pe} pe_\d+ \(", text, re.M)) == cfg.rows
    for r in rnd:
        assert len(re.findall(rf"^\s+{r} round \(", text, re.M)) == 1


def test_faulty_pe_gets_its_own_module():
    """The column holding the faulty PE is a module of its own (keyed by its PE
    classes); the others share one."""
    cfg = get_preset("tiny").systolic
    text = _convert(lambda: FaultySystolicArray(cfg), "systolic_array")
    pe, faulty = module_name(ProcessingElement(cfg), cfg), module_name(FaultyPE(cfg), cfg)
    rnd = module_name(FixedToF32(acc_fixed_bits(cfg.rows)), acc_fixed_bits(cfg.rows))
    assert pe != faulty
    cols = [m for m in _top_modules(text) if m.startswith("systolic_column_")]
    assert len(cols) == 2
    assert _top_modules(text) == sorted([pe, faulty, rnd, "systolic_array"] + cols)
    assert len(re.findall(rf"^\s+{faulty} pe_\d+ \(", text, re.M)) == 1
    assert len(re.findall(rf"^\s+systolic_column_\w+ col_\d+ \(", text, re.M)) == cfg.cols


def test_vector_unit_one_module_per_lane_kind():
    cfg = get_preset("tiny")
    text = _convert(lambda: VectorUnit(cfg), "vector_unit")
    lanes = [module_name(LaneCompute()), module_name(LaneOutput())]
    assert _top_modules(text) == sorted(lanes + ["vector_unit"])
    for mod in lanes:
        assert len(re.findall(rf"^\s+{mod} \w+ \(", text, re.M)) == cfg.systolic.cols


@pytest.mark.parametrize("component", [
    lambda cfg: ProcessingElement(cfg.systolic), lambda cfg: LaneCompute(),
    lambda cfg: LaneOutput(), lambda cfg: VectorUnit(cfg)],
    ids=["processing_element", "lane_compute", "lane_output", "vector_unit"])
def test_port_names(component):
    """Inner components follow the block rule too (tests/rtl/test_plumbing.py checks
    the top-level blocks)."""
    comp = component(get_preset("tiny"))
    bad = [m for m in comp.signature.members if not m.startswith(PREFIXES)]
    assert bad == []


def test_stand_ins_do_not_warn():
    """Writing the tiny chip (two tiles: the second is a stand-in for the first's module)
    raises no UnusedElaboratable warning: the files that build stand-ins carry the pragma."""
    import gc
    import warnings

    from amaranth.hdl import UnusedElaboratable

    from models.config import get_preset
    from rtl.blocks import get_block
    from rtl.lib.verilog import convert

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        convert(get_block("soc").factory(get_preset("tiny")), "soc")
        gc.collect()
    unused = [str(w.message) for w in caught if issubclass(w.category, UnusedElaboratable)]
    assert unused == []
