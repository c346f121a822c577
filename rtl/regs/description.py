"""The host register map, compiled from ``rtl/regs/jalapeno.rdl`` for one chip config.

The SystemRDL file is the single source; this module

* sets every RDL parameter from a :class:`models.config.JalapenoConfig`
  (:func:`rdl_parameters`; the RDL's own defaults do not elaborate);
* compiles and elaborates it with ``systemrdl-compiler`` (:func:`compile_rdl`);
* flattens the compiled model into :class:`RegMap`, a small table (register path,
  address, fields with access, reset value and semantics, port names) that the Amaranth
  exporter (:mod:`rtl.regs.block`) builds the RTL from and the testbench uses as its
  register model. Anything in the RDL that the exporter does not implement is rejected
  here, naming the field and the property (never silently ignored).

No Amaranth import: scripts and tests use it without building hardware.
"""
from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass
from pathlib import Path

from models.config import JalapenoConfig

__all__ = ["RDL_FILE", "TOP", "RegsError", "Field", "Register", "RegMap", "config_hash",
           "rdl_parameters", "compile_rdl", "regmap", "DATA_BITS"]

RDL_FILE = Path(__file__).with_name("jalapeno.rdl")
TOP = "jalapeno_regs"
DATA_BITS = 32
"""Width of every register and of the AXI4-Lite data bus."""


class RegsError(ValueError):
    """The RDL does not compile, or uses something the exporter does not implement."""


def config_hash(cfg: JalapenoConfig) -> int:
    """CRC-32 (zlib) of ``cfg.to_json()``: the value of register CONFIG_HASH."""
    return zlib.crc32(cfg.to_json().encode())


def rdl_parameters(cfg: JalapenoConfig) -> dict[str, int]:
    """Every parameter of the RDL's top addrmap, from the config (nothing typed twice)."""
    return {
        "N_TILES": cfg.soc.tiles,
        "ARRAY_ROWS": cfg.systolic.rows,
        "ARRAY_COLS": cfg.systolic.cols,
        "HAS_FP8": int(cfg.systolic.fp8),
        "HBM_CHANNELS": cfg.hbm.channels,
        # the tiles' DMA together move up to tiles x data_bytes per cycle: the increment
        # must hold that value (data_bytes alone truncated cycles in which several tiles
        # moved a beat)
        "BYTES_INCR_WIDTH": (cfg.soc.tiles * cfg.hbm.data_bytes).bit_length(),
        "CFG_HASH": config_hash(cfg),
    }


def compile_rdl(parameters: dict[str, int], rdl_file: Path = RDL_FILE):
    """Compile and elaborate the RDL with ``parameters`` (all of them, no others).

    Returns the ``systemrdl`` RootNode (what the PeakRDL exporters take). Compile errors
    raise :class:`RegsError` with the compiler's messages.
    """
    from systemrdl import RDLCompileError, RDLCompiler
    from systemrdl.messages import MessagePrinter

    lines: list[str] = []

    class _Collect(MessagePrinter):
        def emit_message(self, msg_lines):
            lines.extend(msg_lines)

    rdlc = RDLCompiler(message_printer=_Collect())
    try:
        rdlc.compile_file(str(rdl_file))
        declared = {p.name for p in rdlc.root.comp_defs[TOP].parameters}
        if set(parameters) != declared:
            raise RegsError(f"{rdl_file.name}: parameters {sorted(declared)} must all be set "
                            f"from the config; given {sorted(parameters)}")
        return rdlc.elaborate(TOP, parameters=dict(parameters))
    except RDLCompileError as e:
        raise RegsError(f"{rdl_file.name} with {parameters}: " + " | ".join(lines or [str(e)])) \
            from None


# --- the flattened table ------------------------------------------------------------------

KINDS = ("const", "control", "scratch", "wire", "intr", "counter")


@dataclass(frozen=True)
class Field:
    """One field of a register, with what the exporter makes of it.

    ``kind``:

    ``const``    sw reads ``reset``; writes ignored; no port.
    ``control``  sw read/write; output ``o_<reg>_<field>``; ``singlepulse``: written value
                 for one cycle then 0; ``swmod``: ``o_<reg>_<field>_wr`` one-cycle strobe
                 on every write that enables one of the field's bytes.
    ``scratch``  sw read/write, no port.
    ``wire``     sw reads input ``i_<reg>_<field>`` (no storage); writes ignored.
    ``intr``     sticky: a cycle with input ``i_<reg>_<field>`` high sets a bit; sw write 1
                 clears (woclr); ``precedence`` hw: a set in the clearing cycle wins.
    ``counter``  adds input ``i_<reg>_<field>_incr`` (``incr_width`` bits) every cycle,
                 modulo 2**width; writes ignored.
    """

    name: str
    lsb: int
    width: int
    kind: str
    reset_value: int | None
    sw: str
    hw: str
    singlepulse: bool = False
    swmod: bool = False
    precedence: str = "sw"
    incr_width: int = 0
    enable: str | None = None          # "REG.field" path of the intr enable field
    desc: str = ""

    @property
    def msb(self) -> int:
        return self.lsb + self.width - 1

    @property
    def mask(self) -> int:
        """Bits of the field in the 32-bit register."""
        return ((1 << self.width) - 1) << self.lsb

    @property
    def sw_writable(self) -> bool:
        return self.kind in ("control", "scratch", "intr")

    @property
    def stored(self) -> bool:
        return self.kind not in ("const", "wire")


@dataclass(frozen=True)
class Register:
    """One 32-bit register instance (array elements are separate instances).

    ``path`` is the RDL path below the top (``TILE[1].STATUS``); ``key`` is it without
    indices, lower case, joined by ``_`` (``tile_status``): the stem of its port names;
    ``index`` its position in the arrays ``dims`` it belongs to (both empty if none).
    """

    path: str
    key: str
    address: int
    index: tuple[int, ...]
    dims: tuple[int, ...]
    fields: tuple[Field, ...]
    name: str = ""
    desc: str = ""

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.path} has no field {name!r}")

    @property
    def has_intr(self) -> bool:
        return any(f.kind == "intr" for f in self.fields)

    @property
    def reset(self) -> int:
        """Value read after reset with every hardware input at 0."""
        return sum((f.reset_value or 0) << f.lsb for f in self.fields if f.kind != "wire")

    @property
    def sw_mask(self) -> int:
        """Bits a software write can change (rw storage; w1c bits)."""
        return sum(f.mask for f in self.fields if f.sw_writable)


@dataclass(frozen=True)
class Port:
    """A hardware port of the register block: Amaranth member ``name`` of ``width`` bits,
    ``In`` if ``direction`` is ``"i"`` else ``Out``, ``.array(*dims)`` if dims."""

    name: str
    direction: str
    width: int
    dims: tuple[int, ...]


@dataclass(frozen=True)
class RegMap:
    """The compiled register map of one config: registers in address order."""

    registers: tuple[Register, ...]
    size: int                            # bytes of the address space of the map
    parameters: tuple[tuple[str, int], ...]

    @property
    def addr_width(self) -> int:
        """AXI4-Lite address bits: the whole map, at least one word."""
        return max(2, (self.size - 1).bit_length())

    def __iter__(self):
        return iter(self.registers)

    def __len__(self):
        return len(self.registers)

    @functools.cached_property
    def _by_path(self) -> dict[str, Register]:
        return {r.path: r for r in self.registers}

    @functools.cached_property
    def _by_addr(self) -> dict[int, Register]:
        return {r.address: r for r in self.registers}

    def __getitem__(self, path: str) -> Register:
        try:
            return self._by_path[path]
        except KeyError:
            raise KeyError(f"no register {path!r}; known: {', '.join(self._by_path)}") from None

    def at(self, address: int) -> Register | None:
        """The register at byte ``address`` (low two bits ignored), or None if unmapped."""
        return self._by_addr.get(address & ~3)

    def field(self, path: str) -> tuple[Register, Field]:
        """``"REG.field"`` -> (register, field)."""
        reg, _, name = path.rpartition(".")
        r = self[reg]
        return r, r.field(name)

    def ports(self) -> list[Port]:
        """Every hardware port, in register order (one per array, not per element)."""
        out: dict[str, tuple[Port, str]] = {}

        def add(name, direction, width, dims, owner):
            if name in out and out[name][1] != owner:
                raise RegsError(f"two ports named {name!r}: of {out[name][1]} and of {owner}")
            out[name] = (Port(name, direction, width, dims), owner)

        for r in self.registers:
            for f in r.fields:
                for name, direction, width in port_names(r, f):
                    add(name, direction, width, r.dims, f"{r.key}.{f.name}")
            if r.has_intr:
                add(f"o_{r.key}_intr", "o", 1, r.dims, r.key)
        return [p for p, _ in out.values()]


def port_names(reg: Register, f: Field) -> list[tuple[str, str, int]]:
    """(name, direction, width) of the ports of field ``f`` (the naming rule in one place)."""
    stem = f"{reg.key}_{f.name}"
    if f.kind == "control":
        return [(f"o_{stem}", "o", f.width)] + ([(f"o_{stem}_wr", "o", 1)] if f.swmod else [])
    if f.kind in ("wire", "intr"):
        return [(f"i_{stem}", "i", f.width)]
    if f.kind == "counter":
        return [(f"i_{stem}_incr", "i", f.incr_width)]
    return []


# --- flattening the compiled model --------------------------------------------------------

_ALLOWED = {"sw", "hw", "reset", "singlepulse", "swmod", "onwrite", "intr", "precedence",
            "enable", "counter", "incrwidth", "name", "desc"}


def _kind(f) -> tuple[str, dict]:
    """Classify a systemrdl FieldNode; reject what the exporter does not implement."""
    from systemrdl.rdltypes import AccessType, InterruptType, OnWriteType, PrecedenceType

    where = f.get_path()
    extra = set(f.list_properties()) - _ALLOWED
    if extra:
        raise RegsError(f"{where}: properties {sorted(extra)} are not implemented by the "
                        f"Amaranth exporter (rtl/regs/block.py)")
    sw, hw = f.get_property("sw"), f.get_property("hw")
    onwrite = f.get_property("onwrite")
    reset = f.get_property("reset")
    if reset is not None and not isinstance(reset, int):
        raise RegsError(f"{where}: reset must be a constant, got {reset!r}")
    opts: dict = {}
    bad = None
    if f.get_property("intr"):
        if (sw, hw, onwrite) != (AccessType.rw, AccessType.w, OnWriteType.woclr):
            bad = "an interrupt field must be sw=rw, hw=w, onwrite=woclr"
        elif f.get_property("intr type") != InterruptType.level or not f.get_property("stickybit"):
            bad = "only level, sticky-bit interrupts are implemented"
        kind = "intr"
        opts["precedence"] = "hw" if f.get_property("precedence") == PrecedenceType.hw else "sw"
        en = f.get_property("enable")
        if en is not None:
            if en.__class__.__name__ != "FieldNode" or en.width != f.width:
                bad = f"enable must be a field as wide as the interrupt field, got {en!r}"
            else:
                opts["enable"] = _rel_path(en)
    elif f.get_property("counter"):
        if (sw, hw) != (AccessType.r, AccessType.na):
            bad = "a counter must be sw=r, hw=na (software reads it, hardware increments)"
        kind = "counter"
        opts["incr_width"] = f.get_property("incrwidth") or 1
    elif onwrite is not None:
        bad = f"onwrite={onwrite.name} is only implemented on interrupt fields"
        kind = "?"
    elif sw == AccessType.r and hw == AccessType.na:
        kind = "const"
        if reset is None:
            bad = "a constant (sw=r, hw=na) needs a reset value"
    elif sw == AccessType.r and hw == AccessType.w:
        kind = "wire"
    elif sw == AccessType.rw and hw == AccessType.r:
        kind = "control"
        opts["singlepulse"] = bool(f.get_property("singlepulse"))
        opts["swmod"] = bool(f.get_property("swmod"))
    elif sw == AccessType.rw and hw == AccessType.na:
        kind = "scratch"
    else:
        bad = f"sw={sw.name}, hw={hw.name} is not implemented"
        kind = "?"
    if f.get_property("singlepulse") and kind != "control":
        bad = "singlepulse is only implemented on sw=rw, hw=r fields"
    if f.get_property("swmod") and kind != "control":
        bad = "swmod is only implemented on sw=rw, hw=r fields"
    if bad:
        raise RegsError(f"{where}: {bad}")
    return kind, opts


def _rel_path(node) -> str:
    """Path below the top addrmap, with array indices: ``TILE[1].STATUS``."""
    return node.get_path().split(".", 1)[1]


def _key(reg_node) -> str:
    parts = []
    node = reg_node
    while node.parent is not None and node.parent.parent is not None:   # stop below top
        parts.append(node.inst_name.lower())
        node = node.parent
    return "_".join(reversed(parts))


def _dims(reg_node) -> tuple[tuple[int, ...], tuple[int, ...]]:
    index, dims = [], []
    node = reg_node
    while node.parent is not None and node.parent.parent is not None:
        if node.is_array:
            dims[:0] = node.array_dimensions
            index[:0] = node.current_idx
        node = node.parent
    return tuple(index), tuple(dims)


def flatten(root) -> RegMap:
    """The :class:`RegMap` of an elaborated ``systemrdl`` RootNode."""
    from systemrdl.node import RegNode

    top = root.top
    regs = []
    for node in top.descendants(unroll=True):
        if not isinstance(node, RegNode):
            continue
        where = node.get_path()
        if node.get_property("regwidth") != DATA_BITS or node.get_property("accesswidth") != DATA_BITS:
            raise RegsError(f"{where}: only {DATA_BITS}-bit registers are implemented")
        if node.external:
            raise RegsError(f"{where}: external registers are not implemented")
        fields = []
        for f in node.fields():
            kind, opts = _kind(f)
            fields.append(Field(name=f.inst_name, lsb=f.lsb, width=f.width, kind=kind,
                                reset_value=f.get_property("reset"), sw=f.get_property("sw").name,
                                hw=f.get_property("hw").name,
                                desc=f.get_property("desc") or "", **opts))
        index, dims = _dims(node)
        regs.append(Register(path=_rel_path(node), key=_key(node), address=node.absolute_address,
                             index=index, dims=dims, fields=tuple(fields),
                             name=node.get_property("name") or "",
                             desc=node.get_property("desc") or ""))
    regs.sort(key=lambda r: r.address)
    params = tuple((p.name, p.get_value()) for p in top.inst.parameters)
    m = RegMap(tuple(regs), top.size, params)
    for r in m:                              # enable references resolve inside the map
        for f in r.fields:
            if f.enable is not None:
                _, ef = m.field(f.enable)
                if ef.kind not in ("control", "scratch"):
                    raise RegsError(f"{r.path}.{f.name}: enable {f.enable} must be sw-written")
    m.ports()                                # name clashes raise here
    return m


@functools.lru_cache(maxsize=16)
def _regmap(params: tuple[tuple[str, int], ...]) -> RegMap:
    return flatten(compile_rdl(dict(params)))


def regmap(cfg: JalapenoConfig) -> RegMap:
    """The register map of ``cfg`` (cached per parameter set)."""
    return _regmap(tuple(sorted(rdl_parameters(cfg).items())))
