# amaranth: UnusedElaboratable=no
"""The coverage merger of ``make coverage`` (tb/common/coverage.py), no simulator.

* coverage.dat records with known counts give the expected line/toggle fractions,
  the time-0 trigger arms are excluded, yosys temporaries leave the named toggle figure;
* two files merge to the union (counts add; a point hit in either is hit);
* holes group by source line range, mapped through the Verilog emitted with src
  attributes (a mismatching Verilog is refused);
* the Verilog of a real Amaranth design maps back to this file's lines;
* functional YAML (with the python/* tags of enum bins) merges across runs.
"""
import shutil
import subprocess

import pytest
from amaranth import Module
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from tb.common.coverage import (SourceMap, functional_summary, merge, merge_functional,
                                parse_dat, ranges, read_functional, summarize)


def key(**f) -> str:
    """A coverage.dat key from its fields (Verilator's \\x01 field \\x02 value form)."""
    return "".join(f"\x01{k}\x02{v}" for k, v in f.items())


def rec(count: int, **f) -> str:
    return f"C '{key(**f)}' {count}"


def line_pt(line: int, count: int, o: str = "block", mod: str = "top") -> str:
    return rec(count, f="top.v", l=line, n=3, t="line", page=f"v_line/{mod}", o=o, S=line,
               h=f"top.{mod}")


def toggle_pt(sig: str, count: int, d: str = "0->1") -> str:
    return rec(count, f="top.v", l=1, n=1, t="toggle", page="v_toggle/top", o=f"{sig}:{d}",
               h="top")


PLAIN = """module top(clk, a, y);
  reg \\$auto$verilog_backend.cc:1:dump_module$1 ;
  always @* begin
    if (\\$auto$verilog_backend.cc:1:dump_module$1 ) begin end
    y = a;
  end
  assign z = a;
  assign w = ~a;
endmodule"""

WITH_SRC = """module top(clk, a, y);
  reg \\$auto$verilog_backend.cc:1:dump_module$1 ;
  (* src = "/r/rtl/x.py:10" *)
  always @* begin
    if (\\$auto$verilog_backend.cc:1:dump_module$1 ) begin end
    y = a;
  end
  assign z = (* src = "/r/rtl/x.py:20" *) a;
  (* src = "/r/rtl/x.py:21|/r/.venv/lib/site-packages/amaranth/lib/fifo.py:5" *)
  assign w = ~a;
endmodule"""


def dat(*records: str) -> str:
    return "# SystemC::Coverage-3\n" + "\n".join(records) + "\n"


FILE_A = dat(line_pt(4, 0, o="if"), line_pt(5, 3), line_pt(7, 0), line_pt(8, 0),
             toggle_pt("a", 1), toggle_pt("a", 0, "1->0"), toggle_pt("__02412", 0),
             toggle_pt("bus[0]", 2), toggle_pt("bus[1]", 0))
FILE_B = dat(line_pt(4, 0, o="if"), line_pt(5, 1), line_pt(7, 4), line_pt(8, 0),
             toggle_pt("a", 0), toggle_pt("a", 2, "1->0"), toggle_pt("__02412", 0),
             toggle_pt("bus[0]", 0), toggle_pt("bus[1]", 0))


def test_parse_counts_and_fractions():
    counts = parse_dat(FILE_A)
    assert len(counts) == 9 and sum(counts.values()) == 6
    cov = summarize(counts, PLAIN)
    assert cov.excluded == 1                          # the time-0 trigger arm on line 4
    assert (cov.line_hit, cov.line_total) == (1, 3) and cov.line == pytest.approx(1 / 3, abs=1e-4)
    assert (cov.toggle_hit, cov.toggle_total) == (2, 4)        # a, bus; not $12
    assert (cov.toggle_all_hit, cov.toggle_all_total) == (2, 5)
    missed = {h["signal"]: h["missed"] for h in cov.toggle_holes}
    assert missed == {"a": 1, "bus": 1}


def test_bad_record_is_refused():
    with pytest.raises(ValueError, match="line 2"):
        parse_dat("# SystemC::Coverage-3\nC 'x' notanumber\n")


def test_two_files_merge_to_the_union():
    a, b = parse_dat(FILE_A), parse_dat(FILE_B)
    m = merge([a, b])
    assert set(m) == set(a) | set(b)
    assert all(m[k] == a.get(k, 0) + b.get(k, 0) for k in m)
    cov = summarize(m, PLAIN)
    assert (cov.line_hit, cov.line_total) == (2, 3)            # line 7 hit in B only
    assert (cov.toggle_hit, cov.toggle_total) == (3, 4)        # a both ways, bus[0]
    assert [h["signal"] for h in cov.toggle_holes] == ["bus"]


def test_holes_map_to_python_lines():
    sm = SourceMap(WITH_SRC, PLAIN, root="/r")
    assert sm.sources(8) == ["rtl/x.py:21", "amaranth/lib/fifo.py:5"]
    assert sm.sources(7) == ["rtl/x.py:20"]
    assert sm.sources(5) == ["rtl/x.py:10"]           # the enclosing always block's
    cov = summarize(parse_dat(FILE_A), PLAIN, sm)
    assert [(h["source"], h["points"], h["verilog_lines"]) for h in cov.line_holes] == \
        [("rtl/x.py:20-21", 2, "7-8")]
    cov = summarize(parse_dat(FILE_A), PLAIN)         # unmapped: Verilog lines
    assert [h["source"] for h in cov.line_holes] == ["<verilog>:7-8"]


def test_source_map_looks_names_up_per_module():
    """yosys' ``$N`` names repeat in every module: a line finds its own module's."""
    with_src = ("module a(x);\n  assign \\$1  = (* src = \"/r/rtl/a.py:1\" *) x;\n"
                "endmodule\nmodule b(x);\n  assign \\$1  = (* src = \"/r/rtl/b.py:2\" *) x;\n"
                "  always @* begin\n    if (\\$1 ) begin\n    end\n  end\nendmodule")
    sm = SourceMap(with_src, with_src.replace('(* src = "/r/rtl/a.py:1" *) ', "")
                   .replace('(* src = "/r/rtl/b.py:2" *) ', ""), root="/r")
    assert sm.sources(7) == ["rtl/b.py:2"] and sm.sources(2) == ["rtl/a.py:1"]


def test_source_map_refuses_other_verilog():
    with pytest.raises(ValueError, match="differs"):
        SourceMap(WITH_SRC, PLAIN.replace("~a", "a"))


class _Toy(wiring.Component):
    a: In(4)
    y: Out(4)

    def elaborate(self, platform):
        m = Module()
        with m.If(self.a[0]):
            m.d.sync += self.y.eq(self.a + 1)         # must appear in the map
        return m


def test_real_verilog_maps_to_this_file():
    toy = _Toy()
    plain = verilog.convert(toy, name="toy", emit_src=False)
    sm = SourceMap(verilog.convert(_Toy(), name="toy", emit_src=True), plain)
    here = __file__.rsplit("/", 1)[-1]
    found = {s.rsplit("/", 1)[-1] for i in range(1, len(plain.split("\n")) + 1)
             for s in sm.sources(i)}
    lines = {int(s.rsplit(":", 1)[1]) for s in found if s.startswith(here + ":")}
    src = open(__file__).read().split("\n")
    assert any("self.y.eq" in src[n - 1] for n in lines), found
    assert all(s.startswith((here, "_ir.py")) for s in found), found


YAML_1 = """T1:
  cover_percentage: 50.0
  type: <class 'cocotb_coverage.coverage.CoverItem'>
T1.env.err:
  at_least: 1
  bins:_hits:
    ? !!python/object/apply:models.tensor_cmd.ErrCode
    - 1
    : 2
    ? !!python/object/apply:models.tensor_cmd.ErrCode
    - 2
    : 0
  type: <class 'cocotb_coverage.coverage.CoverPoint'>
T1.env.dir_x_code:
  bins:_hits:
    ('rd', 'ok'): 1
    ('wr', 'ok'): 0
  type: <class 'cocotb_coverage.coverage.CoverCross'>
"""
YAML_2 = YAML_1.replace("T1", "T2").replace(": 2\n", ": 0\n").replace(
    "- 2\n    : 0", "- 2\n    : 5").replace("('wr', 'ok'): 0", "('wr', 'ok'): 3")


def test_functional_merge(tmp_path):
    (tmp_path / "a.yml").write_text(YAML_1)
    (tmp_path / "b.yml").write_text(YAML_2)
    one = read_functional(tmp_path / "a.yml")
    assert one["env.err"] == {"ErrCode(1)": 2, "ErrCode(2)": 0, "__cross__": 0}
    s1 = functional_summary(one)
    assert (s1["hit"], s1["total"]) == (2, 4)
    assert s1["missed"] == {"env.dir_x_code": ["('wr', 'ok')"], "env.err": ["ErrCode(2)"]}
    both = functional_summary(merge_functional([one, read_functional(tmp_path / "b.yml")]))
    assert (both["hit"], both["total"], both["fraction"]) == (4, 4, 1.0)
    assert both["error_crosses"]["env.dir_x_code"] == {"min_hits": 2, "bin": "('rd', 'ok')",
                                                       "cross": True}
    assert both["error_crosses"]["env.err"]["min_hits"] == 2


def test_ranges():
    assert ranges([7, 1, 2, 3, 9, 10]) == "1-3,7,9-10"


@pytest.mark.skipif(not shutil.which("verilator_coverage"), reason="no verilator_coverage")
def test_merge_matches_verilator_coverage(tmp_path):
    """Verilator's own merger (Debian's 5.006, if installed) writes the same union."""
    (tmp_path / "a.dat").write_text(FILE_A)
    (tmp_path / "b.dat").write_text(FILE_B)
    out = tmp_path / "m.dat"
    subprocess.run(["verilator_coverage", "--write", str(out), str(tmp_path / "a.dat"),
                    str(tmp_path / "b.dat")], check=True, capture_output=True)
    assert parse_dat(out.read_text()) == merge([parse_dat(FILE_A), parse_dat(FILE_B)])


@pytest.mark.nightly
@pytest.mark.sim
def test_make_coverage_on_the_hbm_stub(tmp_path):
    """Nightly: ``make coverage BLOCKS=hbm_stub SEEDS=1`` end to end (~20 s on Verilator):
    a record with line, toggle, holes and the run's coverage.dat; the issue's goal of
    >= 90 % line coverage holds for the block."""
    import json
    import sys

    from tb.runner import ROOT
    rc = subprocess.call([sys.executable, str(ROOT / "scripts" / "coverage.py"), "--blocks",
                          "hbm_stub", "--seeds", "1", "--out", str(tmp_path)], cwd=ROOT)
    assert rc == 0
    (rec,) = json.loads((tmp_path / "coverage.json").read_text())
    assert rec["block"] == "hbm_stub" and rec["runs"]["dat_files"]
    assert 0.9 <= rec["line"] <= 1.0 and 0.0 < rec["toggle"] <= 1.0
    assert rec["detail"]["mapped_to_python"]
    assert all(h["source"].startswith(("rtl/", "amaranth/")) for h in rec["holes"]["line"])
