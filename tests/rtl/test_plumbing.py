"""Structural rules of rtl/ (docs/adding_a_block.md): one queue, one emit-once mechanism,
public Amaranth API only, one port-naming rule, formats defined in models/ only.

These read the source tree and the blocks' signatures; they need no simulator.
"""
import ast
import gc
import re
import warnings
from pathlib import Path

import pytest
from amaranth.hdl import UnusedElaboratable

from models.config import get_preset
from rtl.blocks import BLOCKS

ROOT = Path(__file__).resolve().parents[2]
RTL = sorted((ROOT / "rtl").rglob("*.py"))
CODE = RTL + sorted((ROOT / "tb").rglob("*.py")) + sorted((ROOT / "scripts").rglob("*.py"))
PREFIXES = ("i_", "o_", "m_", "s_")


def _classes(path: Path):
    tree = ast.parse(path.read_text(), str(path))
    return [n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]


def test_one_queue():
    """rtl/ defines no FIFO of its own: the one queue is rtl.lib.stream.Queue."""
    # a class named like a FIFO is either the Queue or built from it (e.g. a set of queues)
    fifos = [f"{p.relative_to(ROOT)}::{c.name}" for p in RTL for c in _classes(p)
             if re.search(r"fifo|queue", c.name, re.I)
             and "from rtl.lib.stream import" not in p.read_text()]
    assert fifos == ["rtl/lib/stream.py::Queue"]
    users = [str(p.relative_to(ROOT)) for p in RTL
             if re.search(r"\b(SyncFIFO|SyncFIFOBuffered|AsyncFIFO)\(|import.*\bfifo\b", p.read_text())]
    assert users == ["rtl/lib/stream.py"]


def test_public_amaranth_api_only():
    """No name-mangled private attributes (the public UnusedElaboratable pragma instead)."""
    bad = [str(p.relative_to(ROOT)) for p in CODE
           if re.search(r"_MustUse__|\._[A-Z][A-Za-z]+__[a-z]", p.read_text())]
    assert bad == []


def test_one_emit_once_mechanism():
    """Shared Verilog modules only through rtl.lib.shared (no hand-forwarded lists)."""
    bad = [str(p.relative_to(ROOT)) for p in CODE if "verilog_submodules" in p.read_text()]
    assert bad == []
    assert not (ROOT / "rtl" / "shared_module.py").exists()


def test_no_plain_enums_in_rtl():
    """Codes shared with software are IntEnums in models/; rtl/ only derives shaped ones."""
    bad = []
    for p in RTL:
        for c in _classes(p):
            for base in c.bases:
                name = ast.unparse(base)
                if name in ("enum.IntEnum", "IntEnum") and not c.keywords:
                    bad.append(f"{p.relative_to(ROOT)}::{c.name}")
    assert bad == []


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_port_names(name):
    """Every top-level member starts with i_, o_ (signals, streams) or m_, s_ (buses)."""
    with warnings.catch_warnings():     # built for its signature only, never elaborated
        warnings.simplefilter("ignore", UnusedElaboratable)
        component = BLOCKS[name].factory(get_preset("tiny"))
        members = list(component.signature.members)
        del component
        gc.collect()
    bad = [m for m in members if not m.startswith(PREFIXES)]
    assert bad == [], f"{name}: members {bad} break the naming rule"
