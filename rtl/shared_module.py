"""Instantiate one component many times as a single Verilog module.

Amaranth's Verilog backend writes one module per submodule *instance*, so an R x C
array of PEs becomes R x C copies of the PE's Verilog: 64x64 arrays take minutes to
emit and Verilator compiles every copy. Instead, a parent creates a
:class:`SharedInstance` per position (same port names as the component, so the
parent's wiring code is unchanged) and lists the component once in
``verilog_submodules()``; :func:`tb.runner.emit_verilog` writes that module next to the
parent, and every position becomes a plain ``Instance`` of it.
"""
from __future__ import annotations

from amaranth import ClockSignal, Instance, ResetSignal, Signal, Value
from amaranth.lib import wiring

__all__ = ["SharedInstance"]


class SharedInstance:
    """Port signals of ``component`` plus the ``Instance`` that binds them.

    Parameters
    ----------
    component : wiring.Component
        A component with flat ports (no nested interfaces) in the ``sync`` domain.
    module_name : str
        Verilog name the component is emitted under (once, by the parent).
    name : str
        Instance name; also prefixes the port signals.
    """

    def __init__(self, component: wiring.Component, module_name: str, name: str):
        self.module_name, self.name = module_name, name
        self._ports = []
        for port, member in component.signature.members.items():
            if not member.is_port:
                raise TypeError(f"SharedInstance needs flat ports, {port!r} is an interface")
            sig = Signal(member.shape, name=f"{name}__{port}")
            setattr(self, port, sig)
            self._ports.append((port, member.flow, sig))

    def instance(self) -> Instance:
        ports = {("i_" if flow == wiring.In else "o_") + port: Value.cast(sig)
                 for port, flow, sig in self._ports}
        return Instance(self.module_name, i_clk=ClockSignal(), i_rst=ResetSignal(), **ports)
