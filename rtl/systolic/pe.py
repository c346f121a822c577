"""Processing element of the weight-stationary systolic array (INT8 and FP8 modes)."""
from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from models.config import SystolicConfig
from models.fp8 import FMT_E4M3, FMT_E5M2
from rtl.fp.fp32_add import FP32Adder
from rtl.fp.fp8_mul import FP8Multiplier

__all__ = ["ProcessingElement", "PEMode", "FP8Fmt", "tile_mode_layout"]


class PEMode(enum.Enum, shape=1):
    """Arithmetic of one tile: INT8 x INT8 -> INT32, or FP8 x FP8 -> FP32."""

    INT8 = 0
    FP8 = 1


class FP8Fmt(enum.Enum, shape=1):
    """Format of one FP8 operand (``models.fp8.FMT_E4M3`` / ``FMT_E5M2``)."""

    E4M3 = FMT_E4M3
    E5M2 = FMT_E5M2


def tile_mode_layout() -> data.StructLayout:
    """Per-tile arithmetic mode; all zeros is INT8 (the formats are then ignored)."""
    return data.StructLayout({"mode": PEMode, "fmt_a": FP8Fmt, "fmt_w": FP8Fmt})


class ProcessingElement(wiring.Component):
    """One multiply-accumulate cell with a shadow (double-buffered) weight.

    The PE holds two weights: ``active``, used by the MACs of the current tile, and
    ``shadow``, written through ``i_w_data``/``i_w_we`` while the current tile computes.
    An activation that carries ``i_swap`` is the first of a new tile: the PE uses the
    shadow weight for it and copies shadow into active, so the swap travels through the
    array diagonally together with the first activation vector of the tile.

    Every activation also carries its tile's arithmetic mode (``i_mode``, registered to
    ``o_mode`` like the activation), so the mode switches exactly at tile boundaries:

    * ``INT8``: ``o_psum = wrap32(i_psum + i_act * w)`` with signed operands;
    * ``FP8``: ``i_act`` and ``w`` are FP8 codes in ``fmt_a`` / ``fmt_w``, ``i_psum``
      and ``o_psum`` are binary32 bits, ``o_psum = fp32_add(i_psum, fp8_product(i_act,
      w))``: the product is exact, the add rounds to nearest even (``FP8Multiplier``
      and ``FP32Adder``, combinational, in front of the ``o_psum`` register).

    The unit of the mode that is not selected sees constant-zero operands (operand
    isolation): it does not toggle, which saves power in silicon and events in
    event-driven simulators.

    Golden models: ``models.systolic.gemm_int8`` (INT8) and ``models.fp8.gemm_fp8`` with
    ``tile_k = rows`` (FP8), through ``models.systolic.SystolicArrayModel``.

    Parameters
    ----------
    config : SystolicConfig
        Operand and accumulator widths.
    fp8 : bool, optional
        Build the FP8 datapath; defaults to ``config.fp8``. ``False`` gives the
        INT8-only PE (the area report's baseline): its mode ports are then ignored and
        it always computes INT8.

    Members
    -------
    i_en : In(1)
        Advance enable (the array's stall policy: everything holds while it is low).
    i_act, o_act : In(signed(8)), Out(signed(8))
        Activation from the left (INT8 value or FP8 code), registered to the right.
    i_mode, o_mode : In(tile_mode_layout()), Out(tile_mode_layout())
        Arithmetic mode of the activation's tile, registered to the right (only when
        the FP8 datapath is built).
    i_swap, o_swap : In(1), Out(1)
        Tile-start token travelling with the activation.
    i_psum, o_psum : In(signed(32)), Out(signed(32))
        Partial sum from above (INT32 or binary32 bits), registered downwards.
    i_w_data, i_w_we : In(signed(8)), In(1)
        Shadow weight write; takes effect only on an advancing cycle.

    Latency: 1 cycle (``o_act``, ``o_mode``, ``o_swap``, ``o_psum`` are registered).
    Timing: in FP8 mode the register-to-register path is FP8 multiply (4x4 bits,
    normalise) followed by a full binary32 add (align, 28-bit add, leading-zero count,
    normalise, round), several times the depth of the INT8 MAC (see docs/systolic.md).
    """

    def __init__(self, config: SystolicConfig, *, fp8: bool | None = None):
        self._config = config
        self._fp8 = config.fp8 if fp8 is None else bool(fp8)
        a, acc = signed(config.act_bits), signed(config.acc_bits)
        members = {
            "i_en": In(1),
            "i_act": In(a), "o_act": Out(a),
            "i_swap": In(1), "o_swap": Out(1),
            "i_psum": In(acc), "o_psum": Out(acc),
            "i_w_data": In(signed(config.weight_bits)), "i_w_we": In(1),
        }
        if self._fp8:
            members |= {"i_mode": In(tile_mode_layout()), "o_mode": Out(tile_mode_layout())}
        super().__init__(members)

    def int8_product(self, a, w):
        """The INT8 product ``a * w`` (exact, 16 bits); a testbench variant overrides it."""
        return a * w

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        active = Signal(signed(cfg.weight_bits))
        shadow = Signal(signed(cfg.weight_bits))
        weight = Mux(self.i_swap, shadow, active)

        if self._fp8:
            fp = Signal()
            m.d.comb += fp.eq(self.i_mode.mode == PEMode.FP8)
            m.submodules.mul = mul = FP8Multiplier()
            m.submodules.add = add = FP32Adder()
            m.d.comb += [
                mul.i_a.eq(Mux(fp, self.i_act, 0)),
                mul.i_b.eq(Mux(fp, weight, 0)),
                mul.i_fmt_a.eq(self.i_mode.fmt_a),
                mul.i_fmt_b.eq(self.i_mode.fmt_w),
                add.i_a.eq(Mux(fp, self.i_psum, 0)),
                add.i_b.eq(mul.o_product),
            ]
            int_a = Mux(fp, 0, self.i_act)
            int_w = Mux(fp, 0, weight)
            # Assigning the 33-bit sum to a 32-bit signal keeps the low bits: wrap.
            p_next = Mux(fp, add.o_result, self.i_psum + self.int8_product(int_a, int_w))
        else:
            p_next = self.i_psum + self.int8_product(self.i_act, weight)

        with m.If(self.i_en):
            m.d.sync += [
                self.o_act.eq(self.i_act),
                self.o_swap.eq(self.i_swap),
                self.o_psum.eq(p_next),
            ]
            if self._fp8:
                m.d.sync += self.o_mode.eq(self.i_mode)
            with m.If(self.i_swap):
                m.d.sync += active.eq(shadow)
            # A shadow write lands at the end of the cycle; a swap in the same cycle
            # still reads the old shadow (the array schedules writes to rely on it).
            with m.If(self.i_w_we):
                m.d.sync += shadow.eq(self.i_w_data)
        return m
