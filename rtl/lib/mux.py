"""Process-free multiplexers: Verilog that is X-free on Icarus by construction.

Why not ``Array(values)[index]`` (or a ``with m.If`` / ``m.Switch`` in ``m.d.comb``)?
Amaranth writes those as ``always @*`` blocks. Icarus does not run an ``always @*``
block at time 0; it runs it on the first change of one of its inputs. A block whose
index and data inputs all keep their initial values (no ``rst`` among them, so the
reset pulse does not wake it either) outputs X until something changes. That is the
Icarus-only hang of ``dma_hbm`` seed 1086681909: the first burst after power-up went to
bank 0 of channel 0, the open-row lookup had never been evaluated, and the burst's due
time was X. Verilator evaluates every block at time 0 and hides it.

:func:`select` builds a chain of ``Mux`` (Verilog ``assign ... ? ... : ...``), which
is evaluated at time 0 and has defined out-of-range behaviour (the last value, as
Amaranth's ``Array`` specifies; Verilog's array index would give X).
"""
from __future__ import annotations

from amaranth import Mux, Value

__all__ = ["select"]


def select(index, values) -> Value:
    """``values[index]`` as continuous assignments; out of range gives ``values[-1]``.

    Parameters
    ----------
    index : Value
        Unsigned selector.
    values : sequence of Value (or int)
        At least one; the result is as wide as the widest.

    Latency: combinational, ``len(values) - 1`` 2:1 multiplexers in a chain (fine for
    the handful of channels/banks it is used for).
    """
    values = list(values)
    if not values:
        raise ValueError("select() needs at least one value")
    out = Value.cast(values[-1])
    for i in range(len(values) - 2, -1, -1):
        out = Mux(index == i, values[i], out)
    return out
