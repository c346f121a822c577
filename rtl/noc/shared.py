"""One Verilog module for many identical NoC components (routers, traffic nodes).

Amaranth writes one Verilog module per submodule instance, so a k x k mesh is k^2
copies of the router. Verilator then compiles, and every cycle executes, k^2 copies of
the same code: the 4x4 traffic wrapper was 112k lines of Verilog, took tens of minutes
to compile at -Os and ran at ~600 cycles/s (instruction-cache bound). With one shared
module Verilator keeps one copy of the code (it does not inline modules this large).

This extends :class:`rtl.shared_module.SharedInstance` to components whose signature has
nested interfaces and arrays (links, streams): the returned object has the component's
signature, so the parent's ``wiring.connect`` code is the same as for the component.
"""
from __future__ import annotations

from amaranth import ClockSignal, Instance, Module, ResetSignal, Value
from amaranth.lib import wiring

__all__ = ["shared_instance"]


def shared_instance(m: Module, component: wiring.Component, module_name: str, name: str):
    """Add an ``Instance`` of ``module_name`` (emitted once from ``component``) to ``m``.

    Parameters
    ----------
    m : Module
        The parent module; the instance is added as submodule ``name``.
    component : wiring.Component
        Gives the signature (ports) of the module; the parent's
        ``verilog_submodules()`` must return it under ``module_name``.
    module_name : str
    name : str
        Instance name; also prefixes the port signals.

    Returns
    -------
    An interface object with ``component.signature`` (``signature.create()``), whose
    members are the instance's port signals.
    """
    sig = component.signature
    component._MustUse__silence = True      # only its signature is used here
    iface = sig.create(path=(name,))
    ports = {}
    # Amaranth's Verilog backend names a port by its signature path joined with "__"
    for path, member, value in sig.flatten(iface):
        port = "__".join(str(p) for p in path)
        ports[("i_" if member.flow == wiring.In else "o_") + port] = Value.cast(value)
    m.submodules[name] = Instance(module_name, i_clk=ClockSignal(), i_rst=ResetSignal(), **ports)
    return iface
