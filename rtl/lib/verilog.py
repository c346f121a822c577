"""Verilog emission: one top level plus every shared module under it, in one file.

Used by the simulation runner (tb/runner.py), ``make verilog`` (scripts/gen_verilog.py)
and ``make lint``. Shared modules (:mod:`rtl.lib.shared`) are found while the design is
elaborated, and each is written once, before the modules that instantiate it.
"""
from __future__ import annotations

from pathlib import Path

from amaranth.back import verilog
from amaranth.lib import wiring

from rtl.lib.shared import collect

__all__ = ["convert", "write"]


def convert(component: wiring.Component, name: str) -> str:
    """Verilog text of ``component`` as module ``name`` and of the shared modules it uses.

    Raises
    ------
    ValueError
        If a shared module's name equals ``name``.
    """
    with collect() as found:
        parts = [verilog.convert(component, name=name, emit_src=False)]
        done: set[str] = set()
        while len(done) < len(found):          # shared modules may share modules in turn
            for mod, sub in list(found.items()):
                if mod in done:
                    continue
                if mod == name:
                    raise ValueError(f"shared module name {mod!r} equals the top level's")
                parts.insert(0, verilog.convert(sub, name=mod, emit_src=False) + "\n")
                done.add(mod)
    return "".join(parts)


def write(component: wiring.Component, name: str, path: Path) -> bool:
    """Write :func:`convert`'s text to ``path``; True if the file changed (an unchanged
    file keeps its time stamp, so Verilator does not rebuild)."""
    text = convert(component, name)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True
