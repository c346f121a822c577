"""GTKWave save files from a component's signature (tb/common/gtkw.py), and make waves on
a fault-injected variant (the DUT that really ran, not the block of the same name)."""

import subprocess
import sys

import pytest
from amaranth import Module, Signal
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from tb.common import gtkw
from tb.runner import ROOT


class Op(enum.Enum, shape=2):
    ADD = 0
    MUL = 3


class _Dut(wiring.Component):
    cmd: In(data.StructLayout({"op": Op, "inner": data.StructLayout({"a": 3, "b": 1}),
                                "n": 4}))
    valid: Out(1)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = Module()
        st = Signal(Op, decoder=Op)                 # the RTL's state-register convention
        with m.If(self.cmd.n == 3):
            m.d.sync += st.eq(Op.MUL)
        m.d.comb += self.valid.eq(st == Op.ADD)
        plain = Signal(2)                           # no decoder: not listed
        inner.d.sync += plain.eq(plain + 1)
        with inner.FSM():
            with inner.State("WAIT"):
                inner.next = "GO"
            with inner.State("GO"):
                inner.next = "WAIT"
        return m


def test_struct_fields_and_enums_decoded(tmp_path):
    save = tmp_path / "x.gtkw"
    text = gtkw.save_file("top", _Dut(), tmp_path / "x.fst", save)
    lines = text.splitlines()
    assert "top.cmd[9:0]" in lines and "top.valid" in lines and "top.clk" in lines
    # op at bits 1..0, inner.a at 4..2, inner.b at 5, n at 9..6
    assert "#{cmd.op} top.cmd[1] top.cmd[0]" in lines
    assert "#{cmd.inner.a} top.cmd[4] top.cmd[3] top.cmd[2]" in lines
    assert "top.cmd[5]" in lines
    assert "#{cmd.n} top.cmd[9] top.cmd[8] top.cmd[7] top.cmd[6]" in lines
    flt = tmp_path / "x.Op.gtkwf"
    assert f"^1 {flt}" in lines and lines[lines.index(f"^1 {flt}") + 1] == gtkw.TRANSLATED_HEX
    assert flt.read_text().split("\n")[:2] == ["0 ADD", "3 MUL"]
    assert text.count(gtkw.GROUP_BEGIN) == 3 and text.count(gtkw.GROUP_END) == 3


def test_state_registers_named(tmp_path):
    """Decoded registers (enum decoder, m.FSM) are found in their submodule and their
    filters name every state; a register without a decoder is not listed."""
    found = {(path, sig.name): sig for path, sig in gtkw.state_registers(_Dut())}
    assert set(found) == {("", "st"), (".inner", "fsm_state")}, found
    assert gtkw._decoded(found[("", "st")]) == {0: "ADD", 3: "MUL"}
    assert gtkw._decoded(found[(".inner", "fsm_state")]) == {0: "WAIT", 1: "GO"}
    text = gtkw.save_file("top", _Dut(), tmp_path / "x.fst", tmp_path / "x.gtkw")
    assert "top.inner.fsm_state" in text.splitlines() and "top.st[1:0]" in text.splitlines()


@pytest.mark.sim
def test_make_waves_builds_the_variant_that_runs(tmp_path):
    """The faulty-PE variant: make waves goes through its tests/sim entry (factory), so the
    FST and the save file are in the variant's build folder."""
    p = subprocess.run([sys.executable, "scripts/waves.py", "--test", "test_broken_pe_is_reported",
                        "--sim", "icarus"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    fst = [l.split()[-1] for l in p.stdout.splitlines() if l.startswith("FST:")]
    assert fst and "systolic_array_faulty-tiny-icarus-waves" in fst[0], p.stdout[-2000:]
    assert (ROOT / fst[0]).with_suffix(".gtkw").read_text().startswith("[dumpfile]")
