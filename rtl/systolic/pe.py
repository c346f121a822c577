"""Processing element of the weight-stationary systolic array."""
from amaranth import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from models.config import SystolicConfig

__all__ = ["ProcessingElement"]


class ProcessingElement(wiring.Component):
    """One INT8 multiply-accumulate cell with a shadow (double-buffered) weight.

    The PE holds two weights: ``active``, used by the MACs of the current tile, and
    ``shadow``, written through ``w_data``/``w_we`` while the current tile computes.
    An activation that carries ``swap_in`` is the first of a new tile: the PE uses the
    shadow weight for it and copies shadow into active, so the swap travels through the
    array diagonally together with the first activation vector of the tile.

    Golden model: ``models.systolic`` (``p_out = wrap32(p_in + a_in * w)``).

    Parameters
    ----------
    config : SystolicConfig
        Operand and accumulator widths.

    Members
    -------
    en : In(1)
        Advance enable (the array's stall policy: everything holds while it is low).
    a_in, a_out : In(signed(8)), Out(signed(8))
        Activation from the left, registered to the right.
    swap_in, swap_out : In(1), Out(1)
        Tile-start token travelling with the activation.
    p_in, p_out : In(signed(32)), Out(signed(32))
        Partial sum from above, ``p_in + a_in * weight`` registered downwards
        (two's-complement wrap at 32 bits).
    w_data, w_we : In(signed(8)), In(1)
        Shadow weight write; takes effect only on an advancing cycle.

    Latency: 1 cycle (``a_out``, ``swap_out``, ``p_out`` are registered).
    """

    def __init__(self, config: SystolicConfig):
        self._config = config
        a, acc = signed(config.act_bits), signed(config.acc_bits)
        super().__init__({
            "en": In(1),
            "a_in": In(a), "a_out": Out(a),
            "swap_in": In(1), "swap_out": Out(1),
            "p_in": In(acc), "p_out": Out(acc),
            "w_data": In(signed(config.weight_bits)), "w_we": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        active = Signal(signed(cfg.weight_bits))
        shadow = Signal(signed(cfg.weight_bits))
        weight = Mux(self.swap_in, shadow, active)

        with m.If(self.en):
            m.d.sync += [
                self.a_out.eq(self.a_in),
                self.swap_out.eq(self.swap_in),
                # Assigning the 33-bit sum to a 32-bit signal keeps the low bits: wrap.
                self.p_out.eq(self.p_in + self.a_in * weight),
            ]
            with m.If(self.swap_in):
                m.d.sync += active.eq(shadow)
            # A shadow write lands at the end of the cycle; a swap in the same cycle
            # still reads the old shadow (the array schedules writes to rely on it).
            with m.If(self.w_we):
                m.d.sync += shadow.eq(self.w_data)
        return m
