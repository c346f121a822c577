"""GTKWave save files for a simulation's FST, from the DUT component's signature.

:func:`save_file` writes clk/rst on top, then one group per top-level port of the
signature (handshake bits first, then payloads). A port whose shape is a struct layout
(``amaranth.lib.data.StructLayout``, nested as deep as it goes) gets its fields as named
vectors below the whole port (``#{port.field} port[hi] ... port[lo]``: GTKWave builds
them from the bits of the flat vector the simulators dump). A port or field with an enum
shape is shown through a translate filter file (``<save>.<enum>.gtkwf``), so its value
reads as the member's name. Used by :func:`tb.runner.run` for every run with waves on, so
the save file always describes the DUT that really ran (variants and harnesses included).

A last group lists the design's state registers: every signal with a decoder (the state
register of each ``m.FSM``, enum-shaped registers) that a ``Switch`` tests or an
assignment drives, found by elaborating the component (``Fragment.get``) and walking its
submodules by name, which is the instance path in the dump. Each gets a translate filter
built from its decoder, so ``fsm_state`` reads ``IDLE``/``BUSY``. A register in an unnamed
submodule, or renamed by the Verilog backend (two of one name in a module), is left out.
"""
from __future__ import annotations

import enum
from pathlib import Path

from amaranth.hdl import Fragment, Shape, Signal
from amaranth.lib import data

__all__ = ["save_file"]

GROUP_BEGIN, GROUP_END = "@800200", "@1000200"
BIT, HEX, TRANSLATED_HEX = "@28", "@22", "@2022"


def _width(shape) -> int:
    return Shape.cast(shape).width


def _vector(scope: str, name: str, width: int) -> str:
    return f"{scope}.{name}" if width == 1 else f"{scope}.{name}[{width - 1}:0]"


def _bits(scope: str, name: str, lo: int, width: int) -> str:
    return " ".join(f"{scope}.{name}[{i}]" for i in range(lo + width - 1, lo - 1, -1))


def _write_filter(path: Path, names: dict[int, str], width: int) -> Path:
    """A GTKWave translate filter: one line per value, in the hex digits GTKWave shows
    for a ``width``-bit trace (both cases)."""
    digits = max(1, -(-width // 4))
    lines = [f"{text} {name}" for value, name in names.items()
             for text in dict.fromkeys((f"{value:0{digits}X}", f"{value:0{digits}x}"))]
    path.write_text("\n".join(lines) + "\n")
    return path


def _filter(save: Path, shape: type[enum.Enum], width: int) -> Path:
    """The translate filter of enum ``shape``."""
    names = {int(m.value) & ((1 << width) - 1): m.name for m in shape}
    return _write_filter(save.with_name(f"{save.stem}.{shape.__name__}.gtkwf"), names, width)


#: state registers wider than this are not enumerated
MAX_STATE_BITS = 8


def _decoded(sig: Signal) -> dict[int, str]:
    """``{value: name}`` of a decoded register: the members of an enum decoder, or what a
    decoder function returns (an ``m.FSM``'s ``NAME/value`` loses its suffix)."""
    dec = sig.decoder
    if _enum_class(dec) is not None:
        return {int(m.value) & ((1 << len(sig)) - 1): m.name for m in dec}
    names = {}
    for value in range(1 << len(sig)):
        try:
            text = str(sig.decoder(value))
        except (KeyError, ValueError, IndexError):
            continue
        names[value] = text.removesuffix(f"/{value}")
    return names


def _statement_signals(stmts):
    """Switch tests and assignment targets, recursively. Amaranth 0.5 exports no
    statement classes, so they are told apart by their (public) attributes
    (tests/rtl/test_gtkw.py fails if that stops finding an FSM)."""
    for st in stmts:
        if hasattr(st, "cases") and hasattr(st, "test"):
            yield st.test
            for _patterns, body, *_ in st.cases:
                yield from _statement_signals(body)
        elif hasattr(st, "lhs"):
            yield st.lhs


def state_registers(component) -> list[tuple[str, Signal]]:
    """``(dotted instance path, signal)`` of every decoded register (FSM states, enum
    registers) of ``component``'s design, in named submodules only."""
    found: dict[tuple[str, str], Signal] = {}

    def walk(frag, path: str) -> None:
        sigs = [s for stmts in frag.statements.values() for s in _statement_signals(stmts)]
        for s in sigs:
            if (isinstance(s, Signal) and s.decoder is not None
                    and 1 <= len(s) <= MAX_STATE_BITS):
                found.setdefault((path, s.name), s)
        for sub, name, *_ in frag.subfragments:
            if name is not None:
                walk(sub, f"{path}.{name}")

    walk(Fragment.get(component, None), "")
    return [(path, sig) for (path, _), sig in found.items()]


def _enum_class(shape):
    return shape if isinstance(shape, type) and issubclass(shape, enum.Enum) else None


def _trace(lines: list, scope: str, name: str, shape, width: int, save: Path,
           lo: int | None = None, label: str | None = None) -> None:
    """One trace: a whole port (``lo`` None) or a field of it (bits ``lo`` up)."""
    enum_cls = _enum_class(shape)
    if enum_cls is not None:
        lines += [f"^1 {_filter(save, enum_cls, width)}", TRANSLATED_HEX]
    else:
        lines.append(BIT if width == 1 else HEX)
    if lo is None:
        lines.append(_vector(scope, name, width))
    elif width == 1:
        lines.append(f"{scope}.{name}[{lo}]")
    else:
        lines.append(f"#{{{label}}} {_bits(scope, name, lo, width)}")


def _fields(lines: list, scope: str, name: str, layout: data.Layout, lo: int, prefix: str,
            save: Path) -> None:
    """The fields of a struct ``layout`` at bit ``lo`` of port ``name``, recursively."""
    for fname, field in layout:
        label = f"{prefix}.{fname}"
        shape = field.shape
        if isinstance(shape, data.StructLayout):
            _fields(lines, scope, name, shape, lo + field.offset, label, save)
        else:
            _trace(lines, scope, name, shape, field.width, save, lo + field.offset, label)


def save_file(top: str, component, fst: Path, save: Path) -> str:
    """The text of ``save`` (a ``.gtkw`` next to ``fst``) for DUT ``component`` whose
    Verilog top is ``top``; enum filter files are written beside ``save``."""
    groups: dict[str, list[tuple[str, object, int]]] = {}
    for path, member in component.signature.members.flatten():
        if member.is_port:
            shape = member.shape
            name = "__".join(str(p) for p in path)
            groups.setdefault(str(path[0]), []).append((name, shape, _width(shape)))
    lines = [f'[dumpfile] "{fst}"', "[timestart] 0", "[sst_expanded] 1", BIT,
             f"{top}.clk", f"{top}.rst"]
    for group, ports in groups.items():
        lines += [GROUP_BEGIN, f"-{group}"]
        for name, shape, width in sorted(ports, key=lambda p: (p[2] > 1, p[0])):
            _trace(lines, top, name, shape, width, save)
            if isinstance(shape, data.StructLayout):
                _fields(lines, top, name, shape, 0, name, save)
        lines += [GROUP_END, f"-{group}"]
    states = state_registers(component)
    if states:
        lines += [GROUP_BEGIN, "-state registers"]
        for i, (path, sig) in enumerate(states):
            flt = _write_filter(save.with_name(f"{save.stem}.state{i}.gtkwf"), _decoded(sig),
                                len(sig))
            lines += [f"^1 {flt}", TRANSLATED_HEX, _vector(top + path, sig.name, len(sig))]
        lines += [GROUP_END, "-state registers"]
    return "\n".join(lines) + "\n"
