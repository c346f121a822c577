"""Processing element of the weight-stationary systolic array (INT8 and FP8 modes)."""
from amaranth import C, Cat, Module, Mux, Signal, signed
from amaranth.lib import data, enum, wiring
from amaranth.lib.wiring import In, Out

from models.config import SystolicConfig
from models.fp8 import FMT_E4M3, FMT_E5M2, PRODUCT_MAG_BITS, acc_fixed_bits
from rtl.fp.fixed_to_f32 import fixed_sum_layout
from rtl.fp.fp8_fixed_mul import FP8FixedMultiplier

__all__ = ["ProcessingElement", "PEMode", "FP8Fmt", "tile_mode_layout", "psum_shape"]


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


def psum_shape(config: SystolicConfig):
    """The partial sum passed down a column: INT32 without the FP8 datapath, else the
    exact fixed-point sum :func:`rtl.fp.fixed_to_f32.fixed_sum_layout` of width
    ``models.fp8.acc_fixed_bits(rows)`` (INT8 tiles use its low 32 bits)."""
    if not config.fp8:
        return signed(config.acc_bits)
    return fixed_sum_layout(acc_fixed_bits(config.rows))


class ProcessingElement(wiring.Component):
    """One multiply-accumulate cell with a shadow (double-buffered) weight.

    The PE holds two weights: ``active``, used by the MACs of the current tile, and
    ``shadow``, written through ``i_w_data``/``i_w_we`` while the current tile computes.
    An activation that carries ``i_swap`` is the first of a new tile: the PE uses the
    shadow weight for it and copies shadow into active, so the swap travels through the
    array diagonally together with the first activation vector of the tile.

    Pipelined MAC: the operands are registered, then the product, then (FP8 build)
    the product aligned to fixed point, and only then added to ``i_psum`` into the
    ``o_psum`` register; the loop-free add is the only arithmetic between ``i_psum``
    and ``o_psum``. Every PE delays its sum by the same number of cycles
    (``SystolicConfig.product_stages``: 2 INT8-only, 3 FP8), so the partial sum that
    meets a product in row r is still the one of the same activation vector (row r - 1
    added its own one cycle earlier, as without the pipeline, because its activation
    also entered one cycle earlier): the activation skew is unchanged and the array's
    latency grows by ``product_stages``.

    Every activation also carries its tile's arithmetic mode (``i_mode``, registered to
    ``o_mode`` like the activation), so the mode switches exactly at tile boundaries:

    * ``INT8``: ``a * w`` (signed, exact), ``o_psum.sum = i_psum.sum + a * w``;
      the low 32 bits are the INT32 wrap-around sum (``o_psum`` is INT32 in the
      INT8-only PE);
    * ``FP8``: ``i_act`` and ``w`` are FP8 codes in ``fmt_a`` / ``fmt_w``;
      ``FP8FixedMultiplier`` gives the exact product as a 64-bit magnitude in units of
      ``2**-32`` with sign and NaN/inf flags, and ``o_psum.sum =
      i_psum.sum +- prod`` exactly in ``acc_fixed_bits(rows)`` bits (the flags are
      ORed down the column: NaN, ``+inf`` and ``-inf`` products seen). The bottom of the
      column rounds once (``rtl.fp.fixed_to_f32.FixedToF32``).

    The unit of the mode that is not selected sees constant-zero operands (operand
    isolation): it does not toggle, which saves power in silicon and events in
    event-driven simulators. Both modes share the one wide adder.

    Golden models: ``models.systolic.gemm_int8`` (INT8) and ``models.fp8.gemm_fp8`` with
    ``tile_k = rows`` (FP8), through ``models.systolic.SystolicArrayModel``.

    Parameters
    ----------
    config : SystolicConfig
        Operand and accumulator widths.
    fp8 : bool, optional
        Build the FP8 datapath; defaults to ``config.fp8``. ``False`` gives the
        INT8-only PE (the area report's baseline): its mode ports are then absent and
        it always computes INT8, with a 32-bit partial sum.

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
    i_psum, o_psum : In(psum_shape(config)), Out(psum_shape(config))
        Partial sum from above, registered downwards.
    i_w_data, i_w_we : In(signed(8)), In(1)
        Shadow weight write; takes effect only on an advancing cycle.

    Latency: 1 cycle for ``o_act``, ``o_mode``, ``o_swap``; ``product_stages + 1``
    cycles (3 INT8-only, 4 FP8) from an activation to the ``o_psum`` that includes its
    product, 1 cycle from ``i_psum``. Timing: the register-to-register paths are the
    weight select, the INT8 multiply (a DSP between registers), the FP8 decode and 4x4
    multiply, the 64-bit alignment shift, and the wide add (docs/systolic.md).
    """

    def __init__(self, config: SystolicConfig, *, fp8: bool | None = None):
        self._config = config
        self._fp8 = config.fp8 if fp8 is None else bool(fp8)
        a = signed(config.act_bits)
        psum = psum_shape(SystolicConfig(rows=config.rows, cols=config.cols, fp8=self._fp8))
        members = {
            "i_en": In(1),
            "i_act": In(a), "o_act": Out(a),
            "i_swap": In(1), "o_swap": Out(1),
            "i_psum": In(psum), "o_psum": Out(psum),
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
        # Reset (synchronous, from the array's rst) reaches only the control tokens,
        # o_swap and o_mode: the weights, operands, products and partial sums are
        # reset-less (a high-fanout reset limited the array's clock, docs/systolic.md).
        # After a reset no result leaves before a tile is loaded and swapped in, and a
        # partial sum only ever meets the products of its own activation, so their
        # contents before that never reach a valid result (they start as 0 anyway: the
        # Verilog initialises every register).
        active = Signal(signed(cfg.weight_bits), reset_less=True)
        shadow = Signal(signed(cfg.weight_bits), reset_less=True)
        # o_psum and o_act are driven from reset-less registers (ports cannot be)
        psum_q = Signal(self.o_psum.shape(), name="psum_q", reset_less=True)
        act_q = Signal(self.o_act.shape(), name="act_q", reset_less=True)
        weight = Mux(self.i_swap, shadow, active)
        en = self.i_en

        def reg(value, name, shape=None):
            """``value`` registered under the advance enable; datapath, so not reset
            (only the tokens that travel with an activation, o_swap and o_mode, are)."""
            r = Signal(shape if shape is not None else value.shape(), name=name,
                       reset_less=True)
            with m.If(en):
                m.d.sync += r.eq(value)
            return r

        if self._fp8:
            # Stage 1: operands registered, each unit's isolated (the unused mode's
            # unit sees zeros): FP8 codes decoded inside the multiplier, INT8 values
            # here. o_mode is the mode registered alongside.
            fp = self.i_mode.mode == PEMode.FP8
            int_a = reg(Mux(fp, 0, self.i_act), "int_a", signed(cfg.act_bits))
            int_w = reg(Mux(fp, 0, weight), "int_w", signed(cfg.weight_bits))
            fp1 = self.o_mode.mode == PEMode.FP8
            # Stage 2: FP8 significand product / exponent offsets / flags (registered
            # inside the multiplier), INT8 product (a DSP fed straight from registers).
            m.submodules.mul = mul = FP8FixedMultiplier(pipelined=True)
            m.d.comb += [
                mul.i_en.eq(en),
                mul.i_a.eq(Mux(fp, self.i_act, 0)), mul.i_b.eq(Mux(fp, weight, 0)),
                mul.i_fmt_a.eq(self.i_mode.fmt_a), mul.i_fmt_b.eq(self.i_mode.fmt_w),
            ]
            int_p = reg(self.int8_product(int_a, int_w), "int_p", signed(2 * cfg.act_bits))
            fp2 = reg(fp1, "fp_2", 1)
            # Stage 3: the product in the adder's form: FP8 shifted into place and, if
            # negative, inverted (one's complement; its +1 is the adder's carry-in).
            # INT8 keeps its two's-complement product sign-extended to 32 bits, not
            # inverted: only the low 32 bits of the sum are used (the INT32 wrap-around
            # sum), whatever the bits above.
            width = len(self.o_psum.sum)
            mag = Mux(fp2, mul.o_mag, Cat(int_p, int_p[-1].replicate(cfg.acc_bits - len(int_p))))
            neg = fp2 & mul.o_neg
            p_ones = reg(Cat(mag, C(0, width - PRODUCT_MAG_BITS)) ^ neg.replicate(width),
                         "p_ones", width)
            p_neg = reg(neg, "p_neg", 1)
            p_nan = reg(fp2 & mul.o_nan, "p_nan", 1)
            p_inf = reg(fp2 & mul.o_inf, "p_inf", 1)
            # Stage 4 (o_psum): one carry chain straight from the registers; the carry-in
            # p_neg enters through an extra low bit (1 + p_neg carries p_neg into bit 1).
            total = Signal(width + 1)
            m.d.comb += total.eq(Cat(C(1, 1), self.i_psum.sum) + Cat(p_neg, p_ones))
            with m.If(en):
                m.d.sync += [
                    psum_q.sum.eq(total[1:]),
                    psum_q.nan.eq(self.i_psum.nan | p_nan),
                    psum_q.pinf.eq(self.i_psum.pinf | (p_inf & ~p_neg)),
                    psum_q.ninf.eq(self.i_psum.ninf | (p_inf & p_neg)),
                ]
        else:
            # Stage 1: the weight registered (o_act is the activation's); stage 2: the
            # product (a DSP between registers); stage 3: the sum.
            w_q = reg(weight, "w_q")
            prod = reg(self.int8_product(self.o_act, w_q), "prod", signed(2 * cfg.act_bits))
            with m.If(en):
                # Assigning the 33-bit sum to a 32-bit signal keeps the low bits: wrap.
                m.d.sync += psum_q.eq(self.i_psum + prod)

        m.d.comb += [self.o_psum.eq(psum_q), self.o_act.eq(act_q)]
        with m.If(en):
            m.d.sync += [
                act_q.eq(self.i_act),
                self.o_swap.eq(self.i_swap),
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
