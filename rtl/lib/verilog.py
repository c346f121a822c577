"""Verilog emission: one top level plus every shared module under it, in one file.

Used by the simulation runner (tb/runner.py), ``make verilog`` (scripts/gen_verilog.py)
and ``make lint``. Shared modules (:mod:`rtl.lib.shared`) are found while the design is
elaborated, and each is written once, before the modules that instantiate it; a
``cache`` passed by the caller keeps each one's text across designs (``make verilog``
writes the PE once per run, not once per block that holds an array).

Memories: Amaranth writes a memory's initial contents word by word (``$meminit``; in
the Verilog one ``initial`` assignment per word), which for the HBM stub's backing store
(2 M words per channel on ``jalapeno``) costs gigabytes and minutes. A memory whose
initial contents are all zero (the SRAMs, queues and backing stores: every
``Memory(init=[])``) is written without them, as a plain inferable RAM
(``reg [W-1:0] mem [D-1:0];`` and its ports), followed by a simulation-only loop that
zeroes it at time 0::

    `ifndef SYNTHESIS
      initial begin : mem_zero  integer i; for (i = 0; ...) mem[i] = 0; end
    `endif

so both simulators start from Amaranth's zeros (no X) while synthesis tools (yosys
defines ``SYNTHESIS``) see an SRAM without initial contents. Memories with non-zero
contents (ROMs) keep Amaranth's word-by-word form.

Time 0 on Icarus (docs/lint.md, "The X check", classes A and B; :func:`time0_fix`):
a synchronous read port's data register starts at 0 as in Amaranth's simulator, and
every ``always @*`` process runs at time 0 under ``-g2012`` too.
"""
from __future__ import annotations

import contextlib
import re
from pathlib import Path

from amaranth.back import rtlil, verilog
from amaranth.lib import wiring

from rtl.lib.shared import collect, module_name

__all__ = ["convert", "write", "zero_init_block", "time0_fix"]


@contextlib.contextmanager
def _elide_zero_init(elided: list):
    """While active, Amaranth's RTLIL emitter skips the ``$meminit`` of memories whose
    contents are all zero; each is recorded in ``elided`` as (module, memory, width, depth).

    Amaranth 0.5 has no option for this; ``ModuleEmitter.emit_memory`` writes only that
    cell (tests/rtl/test_gen_verilog.py checks the hook still exists and still works).
    """
    emitter = rtlil.ModuleEmitter
    original = emitter.emit_memory

    def emit_memory(self, cell_idx, cell):
        if any(cell.init):
            return original(self, cell_idx, cell)
        elided.append((self.builder.name, self.memories[cell_idx].memid, cell.width,
                       cell.depth))

    emitter.emit_memory = emit_memory
    try:
        yield
    finally:
        emitter.emit_memory = original


def zero_init_block(memory: str, width: int, depth: int) -> str:
    """The simulation-only ``initial`` block that zeroes ``memory`` (a Verilog name)."""
    label = re.sub(r"\W", "_", memory.strip().lstrip("\\")) + "_zero"
    return (f"`ifndef SYNTHESIS\n"
            f"  initial begin : {label}\n"
            f"    integer i;\n"
            f"    for (i = 0; i < {depth}; i = i + 1)\n"
            f"      {memory}[i] = {width}'d0;\n"
            f"  end\n"
            f"`endif\n")


def _add_zero_init(text: str, elided: list) -> str:
    """Insert :func:`zero_init_block` after the declaration of every elided memory."""
    if not elided:
        return text
    want: dict[str, list] = {}
    for module, memid, width, depth in elided:
        want.setdefault(module.lstrip("\\"), []).append((memid.lstrip("\\"), width, depth))
    out, todo, placed = [], [], 0
    for line in text.splitlines(keepends=True):
        out.append(line)
        if line.startswith("module "):
            mod = line[len("module "):].split("(")[0].strip().lstrip("\\")
            todo = want.get(mod, [])
            continue
        if todo and line.startswith("  reg ["):
            m = re.match(r"  reg \[(\d+):0\] (\\\S+ |\S+) \[(\d+):0\];", line)
            if m:
                name = m.group(2)
                for i, (memid, width, depth) in enumerate(todo):
                    if (name.strip().lstrip("\\") == memid and int(m.group(1)) + 1 == width
                            and int(m.group(3)) + 1 == depth):
                        out.append(zero_init_block(name, width, depth))
                        del todo[i]
                        placed += 1
                        break
    if placed != len(elided):      # never leave a memory without its zeros (X on Icarus)
        missing = [(mod, mem) for mod, mems in want.items() for mem, _, _ in mems]
        raise RuntimeError(f"memory declarations not found in yosys' output: {missing}")
    return "".join(out)


#: a synchronous memory read port's data register, as yosys writes it: no initial value
_READ_PORT_REG = re.compile(r"^(  reg (?:\[\d+:0\] )?_\d+_);$", re.M)
#: yosys's time-0 trigger of ``always @*`` processes, initialised in its declaration
_START = re.compile(r"^(  )reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+) +=\s*0;$",
                    re.M)
#: yosys's one-line connections of a reg partly driven by a process
_CONN = re.compile(r"^  always @\*\n    ([^\n]*;)$", re.M)


def time0_fix(text: str) -> str:
    """yosys' Verilog with no X at time 0 on Icarus (the fix docs/lint.md proposed).

    (A) read-port data registers (``reg [N:0] _K_;``) start at 0, as in Amaranth's
    simulator; (B) yosys' trigger reg, initialised in its declaration (no event under
    Icarus ``-g2012``), gets an ``initial`` assignment instead (an X -> 0 event), and
    the one-line ``always @* lhs = rhs;`` connections read it too, so every process
    runs at time 0. Verilator runs every process at time 0 anyway.
    """
    out = []
    for mod in text.split("\nmodule "):
        m = _START.search(mod)
        if m:
            name = m[2]
            mod = _START.sub(lambda m: f"{m[1]}reg {m[2]} ;\n{m[1]}initial {m[2]}  = 1'h0;", mod)
        elif _CONN.search(mod):
            name = "\\$time0_start"
            head = mod.index(";\n") + 2          # after the port list
            mod = f"{mod[:head]}  reg {name} ;\n  initial {name}  = 1'h0;\n{mod[head:]}"
        else:
            out.append(mod)
            continue
        out.append(_CONN.sub(lambda c: f"  always @* begin\n    if ({name} ) begin end\n"
                                       f"    {c[1]}\n  end", mod))
    return _READ_PORT_REG.sub(r"\1 = 0;", "\nmodule ".join(out))


def _convert_one(component, name: str) -> str:
    elided: list = []
    with _elide_zero_init(elided):
        text = verilog.convert(component, name=name, emit_src=False)
    return time0_fix(_add_zero_init(text, elided))


_TOP = object()    # convert(key=...) not given


def _rename(text: str, old: str, new: str) -> str:
    """``text`` of shared module ``old`` as module ``new`` (its flattened submodules,
    ``\\old.sub``, follow). ``old`` ends in hash digits, so it names nothing else."""
    return re.sub(rf"\b{re.escape(old)}\b", new, text)


def convert(component: wiring.Component, name: str, *, cache: dict | None = None,
            key=_TOP) -> str:
    """Verilog text of ``component`` as module ``name`` and of the shared modules it uses.

    Parameters
    ----------
    component : wiring.Component
    name : str
        The top module's name.
    cache : dict, optional
        ``{shared module name: (Verilog text, shared modules it uses)}``, read and
        filled: a shared module already in it is not elaborated again.
    key : optional
        The ``key`` with which :func:`rtl.lib.shared.shared_instance` places this
        component elsewhere (e.g. the array in the tensor core): the top is then that
        shared module, taken from (or put into) ``cache``, renamed ``name``.

    Raises
    ------
    ValueError
        If a shared module's name equals ``name``.
    """
    cache = {} if cache is None else cache
    with collect() as found:
        if key is _TOP:
            alias, parts = None, [_convert_one(component, name)]
        else:
            alias, parts = module_name(component, key), []
            found[alias] = component
        done: set[str] = set()
        while len(done) < len(found):          # shared modules may share modules in turn
            for mod, sub in list(found.items()):
                if mod in done:
                    continue
                if mod == name:
                    raise ValueError(f"shared module name {mod!r} equals the top level's")
                if mod not in cache:
                    with collect() as inner:   # the shared modules this one uses
                        text = _convert_one(sub, mod) + "\n"
                    cache[mod] = (text, dict(inner))
                text, uses = cache[mod]
                for dep, comp in uses.items():
                    found.setdefault(dep, comp)
                if mod == alias:
                    parts.append(_rename(text, alias, name))
                else:
                    parts.insert(0, text)
                done.add(mod)
    return "".join(parts)


def write(component: wiring.Component, name: str, path: Path, *,
          cache: dict | None = None, key=_TOP) -> bool:
    """Write :func:`convert`'s text to ``path``; True if the file changed (an unchanged
    file keeps its time stamp, so Verilator does not rebuild)."""
    text = convert(component, name, cache=cache, key=key)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True
