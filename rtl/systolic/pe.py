"""Processing element of the weight-stationary systolic array (INT8 and FP8 modes)."""
from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from models.config import SystolicConfig
from rtl.fp.fp32_add import FP32Adder
from rtl.fp.fp8_mul import FP8Multiplier

__all__ = ["ProcessingElement", "PEMode", "FP8Fmt", "tile_mode_layout"]


class PEMode(enum.Enum, shape=1):
    """Arithmetic of one tile: INT8 x INT8 -> INT32, or FP8 x FP8 -> FP32."""

    INT8 = 0
    FP8 = 1


class FP8Fmt(enum.Enum, shape=1):
    """Format of one FP8 operand (``rtl.fp.fp8_mul.FMT_E4M3`` / ``FMT_E5M2``)."""

    E4M3 = 0
    E5M2 = 1


def tile_mode_layout() -> data.StructLayout:
    """Per-tile arithmetic mode; all zeros is INT8 (the formats are then ignored)."""
    return data.StructLayout({"mode": PEMode, "fmt_a": FP8Fmt, "fmt_w": FP8Fmt})


class ProcessingElement(wiring.Component):
    """One multiply-accumulate cell with a shadow (double-buffered) weight.

    The PE holds two weights: ``active``, used by the MACs of the current tile, and
    ``shadow``, written through ``w_data``/``w_we`` while the current tile computes.
    An activation that carries ``swap_in`` is the first of a new tile: the PE uses the
    shadow weight for it and copies shadow into active, so the swap travels through the
    array diagonally together with the first activation vector of the tile.

    Every activation also carries its tile's arithmetic mode (``mode_in``, registered to
    ``mode_out`` like the activation), so the mode switches exactly at tile boundaries:

    * ``INT8``: ``p_out = wrap32(p_in + a_in * w)`` with signed operands;
    * ``FP8``: ``a_in`` and ``w`` are FP8 codes in ``fmt_a`` / ``fmt_w``, ``p_in`` and
      ``p_out`` are binary32 bits, ``p_out = fp32_add(p_in, fp8_product(a_in, w))``:
      the product is exact, the add rounds to nearest even (``FP8Multiplier`` and
      ``FP32Adder``, combinational, in front of the ``p_out`` register).

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
    en : In(1)
        Advance enable (the array's stall policy: everything holds while it is low).
    a_in, a_out : In(signed(8)), Out(signed(8))
        Activation from the left (INT8 value or FP8 code), registered to the right.
    mode_in, mode_out : In(tile_mode_layout()), Out(tile_mode_layout())
        Arithmetic mode of the activation's tile, registered to the right (only when
        the FP8 datapath is built).
    swap_in, swap_out : In(1), Out(1)
        Tile-start token travelling with the activation.
    p_in, p_out : In(signed(32)), Out(signed(32))
        Partial sum from above (INT32 or binary32 bits), registered downwards.
    w_data, w_we : In(signed(8)), In(1)
        Shadow weight write; takes effect only on an advancing cycle.

    Latency: 1 cycle (``a_out``, ``mode_out``, ``swap_out``, ``p_out`` are registered).
    Timing: in FP8 mode the register-to-register path is FP8 multiply (4x4 bits,
    normalise) followed by a full binary32 add (align, 28-bit add, leading-zero count,
    normalise, round), several times the depth of the INT8 MAC (see docs/systolic.md).
    """

    def __init__(self, config: SystolicConfig, *, fp8: bool | None = None):
        self._config = config
        self._fp8 = config.fp8 if fp8 is None else bool(fp8)
        a, acc = signed(config.act_bits), signed(config.acc_bits)
        members = {
            "en": In(1),
            "a_in": In(a), "a_out": Out(a),
            "swap_in": In(1), "swap_out": Out(1),
            "p_in": In(acc), "p_out": Out(acc),
            "w_data": In(signed(config.weight_bits)), "w_we": In(1),
        }
        if self._fp8:
            members |= {"mode_in": In(tile_mode_layout()), "mode_out": Out(tile_mode_layout())}
        super().__init__(members)

    def int8_product(self, a, w):
        """The INT8 product ``a * w`` (exact, 16 bits); a testbench variant overrides it."""
        return a * w

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        active = Signal(signed(cfg.weight_bits))
        shadow = Signal(signed(cfg.weight_bits))
        weight = Mux(self.swap_in, shadow, active)

        if self._fp8:
            fp = Signal()
            m.d.comb += fp.eq(self.mode_in.mode == PEMode.FP8)
            m.submodules.mul = mul = FP8Multiplier()
            m.submodules.add = add = FP32Adder()
            m.d.comb += [
                mul.a.eq(Mux(fp, self.a_in, 0)),
                mul.b.eq(Mux(fp, weight, 0)),
                mul.fmt_a.eq(self.mode_in.fmt_a),
                mul.fmt_b.eq(self.mode_in.fmt_w),
                add.a.eq(Mux(fp, self.p_in, 0)),
                add.b.eq(mul.product),
            ]
            int_a = Mux(fp, 0, self.a_in)
            int_w = Mux(fp, 0, weight)
            # Assigning the 33-bit sum to a 32-bit signal keeps the low bits: wrap.
            p_next = Mux(fp, add.result, self.p_in + self.int8_product(int_a, int_w))
        else:
            p_next = self.p_in + self.int8_product(self.a_in, weight)

        with m.If(self.en):
            m.d.sync += [
                self.a_out.eq(self.a_in),
                self.swap_out.eq(self.swap_in),
                self.p_out.eq(p_next),
            ]
            if self._fp8:
                m.d.sync += self.mode_out.eq(self.mode_in)
            with m.If(self.swap_in):
                m.d.sync += active.eq(shadow)
            # A shadow write lands at the end of the cycle; a swap in the same cycle
            # still reads the old shadow (the array schedules writes to rely on it).
            with m.If(self.w_we):
                m.d.sync += shadow.eq(self.w_data)
        return m
