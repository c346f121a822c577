"""One Verilog module for many identical instances ("emit once").

Amaranth's Verilog backend writes one module per submodule *instance*: an R x C array
is R x C copies of the PE's Verilog, a k x k mesh k^2 copies of the router. Verilator
then compiles (and every cycle executes) every copy: a 64x64 FP8 array took minutes to
emit, the 4x4 traffic mesh was 112k lines. Instead a parent calls
:func:`shared_instance` for each position: it adds an ``Instance`` of a module named
after the component's class and parameters, and returns an interface with the
component's signature, so the parent's wiring code (``wiring.connect``, ``.eq``) is the
same as for a real submodule.

The Verilog writer (:func:`rtl.lib.verilog.convert`) collects, while it elaborates a
design, every shared module its instances name, and writes each once: nobody forwards
lists of submodules by hand. The name is ``<class in snake case>_<8 hex digits>``, the
digits a hash of the class and its ``key`` (the parameters that change the module's
logic, e.g. its config), so two configurations in one Verilog file never collide.

Only the first component of each name is elaborated; the others exist for their
signature. Files that create such components carry the Amaranth pragma
``# amaranth: UnusedElaboratable=no``. Amaranth's own simulator cannot run an
``Instance``: blocks that share modules take a ``shared=False`` switch for it.
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import re

from amaranth import ClockSignal, Instance, Module, ResetSignal, Value
from amaranth.lib import wiring

__all__ = ["shared_instance", "module_name", "collect"]

_found: contextvars.ContextVar[dict | None] = contextvars.ContextVar("shared_modules",
                                                                     default=None)


def module_name(component: wiring.Component, key=()) -> str:
    """Verilog module name of ``component`` with parameters ``key`` (its ``repr`` is hashed)."""
    cls = type(component)
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()
    digest = hashlib.sha1(f"{cls.__module__}.{cls.__qualname__}|{key!r}".encode()).hexdigest()
    return f"{snake}_{digest[:8]}"


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


def shared_instance(m: Module, component: wiring.Component, name: str, *, key=()):
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

    Returns
    -------
    An interface with ``component.signature`` whose members are the instance's ports.

    Raises
    ------
    RuntimeError
        Outside :func:`rtl.lib.verilog.convert` (nothing would write the module).
    """
    found = _found.get()
    if found is None:
        raise RuntimeError(f"shared instance {name!r} outside rtl.lib.verilog.convert(): "
                           "write the design with it (or build the block with shared=False)")
    mod = module_name(component, key)
    found.setdefault(mod, component)
    sig = component.signature
    iface = sig.create(path=(name,))
    ports = {}
    # Amaranth's Verilog backend names a port by its signature path joined with "__"
    for path, member, value in sig.flatten(iface):
        port = "__".join(str(p) for p in path)
        ports[("i_" if member.flow == wiring.In else "o_") + port] = Value.cast(value)
    m.submodules[name] = Instance(mod, i_clk=ClockSignal(), i_rst=ResetSignal(), **ports)
    return iface
