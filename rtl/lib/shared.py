"""One Verilog module for many identical instances ("emit once").

Amaranth's Verilog backend writes one module per submodule *instance*: an R x C array
is R x C copies of the PE's Verilog, a k x k mesh k^2 copies of the router, a chip of
16 tiles 16 copies of a tile. Verilator then compiles (and every cycle executes) every
copy, and the emission itself grows with every copy. Instead a parent calls
:func:`shared_instance` for each position: it adds an ``Instance`` of a module named
after the component's class and parameters, and returns an interface with the
component's signature, so the parent's wiring code (``wiring.connect``, ``.eq``) is the
same as for a real submodule.

The Verilog writer (:func:`rtl.lib.verilog.convert`) collects, while it elaborates a
design, every shared module its instances name, and writes each once: nobody forwards
lists of submodules by hand. Outside the writer (Amaranth's own simulator, a plain
``amaranth.back.verilog.convert``) :func:`shared_instance` adds the component as an
ordinary submodule instead: the same logic, flattened per instance.

Module names (:func:`module_name`) read ``<class in snake case>_<parameters>_<6 hex
digits>``, e.g. ``processing_element_64x64_int8fp8_a8w8_3f2a1c``: the parameter summary
(:func:`param_summary`) says which configuration it is, the digits (a hash of the class
and its full ``key``) keep two configurations that share a summary apart.

Only the first component of each name is elaborated; the others exist for their
signature. The files that create such components, or create elaboratables in the
constructor of one (a tile's tensor core and DMA engine, a core's units), carry
Amaranth's public pragma ``# amaranth: UnusedElaboratable=no``
(``tests/rtl/test_shared_verilog.py`` checks that writing the chip warns of nothing).
"""
from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
import re

from amaranth import ClockSignal, Elaboratable, Instance, Module, ResetSignal, Value
from amaranth.lib import wiring

from models.config import (DmaConfig, HbmConfig, JalapenoConfig, NocConfig, SystolicConfig,
                           TensorConfig)

__all__ = ["shared_instance", "module_name", "param_summary", "collect", "collecting"]

_found: contextvars.ContextVar[dict | None] = contextvars.ContextVar("shared_modules",
                                                                     default=None)


def _size(n: int) -> str:
    """``n`` bytes as ``<k>k`` / ``<m>m`` when exact (``65536`` -> ``64k``)."""
    for unit, div in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
        if n >= div and n % div == 0:
            return f"{n // div}{unit}"
    return str(n)


def _systolic(c: SystolicConfig) -> str:
    return f"{c.rows}x{c.cols}_{'int8fp8' if c.fp8 else 'int8'}_a{c.act_bits}w{c.weight_bits}"


def _noc(c: NocConfig) -> str:
    return f"{c.cols}x{c.rows}_d{c.data_bits}_b{c.buffer_depth}"


def _hbm(c: HbmConfig) -> str:
    return f"{_size(c.store)}_d{8 * c.data_bytes}_o{c.max_outstanding}"


def _dma(c: DmaConfig) -> str:
    return f"s{_size(c.sram_bytes)}_b{c.max_burst_beats}_o{c.max_outstanding}"


def _tensor(c: TensorConfig) -> str:
    return f"a{c.act_rows}w{c.weight_rows}c{c.acc_rows}"


def _chip(c: JalapenoConfig) -> str:
    return f"{_systolic(c.systolic)}_d{8 * c.hbm.data_bytes}"


_SUMMARY = {SystolicConfig: _systolic, NocConfig: _noc, HbmConfig: _hbm, DmaConfig: _dma,
            TensorConfig: _tensor, JalapenoConfig: _chip}


def param_summary(key) -> str:
    """A short identifier-safe summary of ``key`` for module names ("" if none).

    Config dataclasses give their shaping fields (:data:`_SUMMARY`: an array's shape and
    datapath, a mesh's size and flit width, ...); ints and short strings themselves;
    tuples the summaries of their items joined by ``_``. Anything else gives "" (the
    hash alone tells configurations apart).
    """
    if type(key) in _SUMMARY:
        return _SUMMARY[type(key)](key)
    if isinstance(key, bool):
        return "t" if key else "f"
    if isinstance(key, int):
        return str(key)
    if isinstance(key, str):
        return re.sub(r"\W", "", key)[:16]
    if isinstance(key, tuple):
        return "_".join(s for s in (param_summary(k) for k in key) if s)
    return ""


def _key_repr(key) -> str:
    # a config's repr lists every field (nested configs included): two keys that differ
    # in any parameter hash apart; the preset name is not a parameter of the logic
    if dataclasses.is_dataclass(key) and hasattr(key, "name"):
        return repr({f.name: getattr(key, f.name) for f in dataclasses.fields(key)
                     if f.name != "name"})
    return repr(key)


def module_name(component: wiring.Component, key=(), summary: str | None = None) -> str:
    """Verilog module name of ``component`` with parameters ``key``:
    ``<class>_<summary>_<6 hex digits of a hash of the class and key>``; ``summary``
    defaults to :func:`param_summary` of ``key``."""
    cls = type(component)
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()
    digest = hashlib.sha1(f"{cls.__module__}.{cls.__qualname__}|{_key_repr(key)}"
                          .encode()).hexdigest()
    summary = param_summary(key) if summary is None else re.sub(r"\W", "", summary)
    return f"{snake}_{summary}_{digest[:6]}" if summary else f"{snake}_{digest[:6]}"


@contextlib.contextmanager
def collect():
    """Within the block, :func:`shared_instance` records ``{module name: component}``
    into the yielded dict (the first component of each name)."""
    found: dict = {}
    token = _found.set(found)
    try:
        yield found
    finally:
        _found.reset(token)


def collecting() -> bool:
    """True inside :func:`collect` (a Verilog writer that emits shared modules is active)."""
    return _found.get() is not None


def shared_instance(m: Module, component: wiring.Component, name: str, *, key=(),
                    summary: str | None = None):
    """Add submodule ``name``: an instance of the shared Verilog module of ``component``.

    Parameters
    ----------
    m : Module
        The parent module.
    component : wiring.Component
        Gives the ports (its signature) and, if it is the first of its module name,
        the logic. Its clock domain must be ``sync``.
    name : str
        Instance name; also prefixes the interface's signals.
    key : hashable with a stable ``repr``
        The parameters that change the component's logic (a config dataclass, a
        tuple). Components of one class and equal ``key`` must be identical.
    summary : str, optional
        The parameter part of the module name, when ``key`` holds more than the
        parameters worth reading (e.g. a bridge keyed by the whole chip config names
        its NoC); default :func:`param_summary` of ``key``.

    Returns
    -------
    An interface with ``component.signature`` whose members are the instance's ports;
    outside :func:`collect` (no Verilog writer active), ``component`` itself, added to
    ``m`` as an ordinary submodule.
    """
    found = _found.get()
    if found is None:
        m.submodules[name] = component
        return component
    mod = module_name(component, key, summary)
    found.setdefault(mod, component)   # later ones are stand-ins: the first is written
    sig = component.signature
    iface = sig.create(path=(name,))
    ports = {}
    # Amaranth's Verilog backend names a port by its signature path joined with "__"
    for path, member, value in sig.flatten(iface):
        port = "__".join(str(p) for p in path)
        ports[("i_" if member.flow == wiring.In else "o_") + port] = Value.cast(value)
    m.submodules[name] = Instance(mod, i_clk=ClockSignal(), i_rst=ResetSignal(), **ports)
    return iface
