# amaranth: UnusedElaboratable=no
"""One column of the systolic array: R processing elements and the rounding under them.

(The pragma above: with shared modules, only the first column of each Verilog module
elaborates its PEs; the others are created for their signature, see
:mod:`rtl.lib.shared`.)
"""
from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from models.config import SystolicConfig
from models.fp8 import acc_fixed_bits
from rtl.fp.fixed_to_f32 import FixedToF32
from rtl.lib.shared import shared_instance
from rtl.systolic.pe import PEMode, ProcessingElement, tile_mode_layout

__all__ = ["SystolicColumn"]


class SystolicColumn(wiring.Component):
    """A column of R processing elements (:class:`rtl.systolic.pe.ProcessingElement`)
    with, in the FP8 build, the column's rounding unit
    (:class:`rtl.fp.fixed_to_f32.FixedToF32`) under the bottom PE: the unit of the
    array's hierarchy.

    Row r's activation, swap token and mode enter PE r from the left (``i_act[r]``
    ...) and leave it to the right (``o_act[r]`` ...), registered; the partial sum
    moves down from PE 0 (which starts from 0) to PE R-1, whose sum is the column's
    ``o_sum`` (rounded to binary32 when the bottom PE's activation was FP8, else its
    low 32 bits). The array places its C columns as instances of one shared Verilog
    module (:func:`rtl.lib.shared.shared_instance` keyed by the config) and each
    column places its R PEs as instances of the shared PE module: R + C instances
    are written instead of R x C, and the ports between the modules are the narrow
    activation links, not the wide partial sums (docs/verilog.md).

    Each PE and the rounding unit have their own copy of the array's advance enable,
    a register in this column: the copy's next state is ``Mux(copy, ~i_ready,
    i_refuse)``, so every copy equals the array's ``skid_v``
    (:class:`rtl.systolic.array.SystolicArray`) and drives the clock enables of one
    unit only.

    The weight write ``i_w_we`` with ``i_w_data`` lands in the shadow register of PE
    ``i_w_row``.

    Golden model: as the array's (``models.systolic.SystolicArrayModel``; one column
    of it).

    Parameters
    ----------
    config : SystolicConfig
        The array's configuration (PE widths, R = ``rows``).
    pes : list of wiring.Component, optional
        The R PEs to place, top first, for testbenches that replace one (fault
        injection): the array then keys such a column by its PE classes. Default:
        ``ProcessingElement(config)`` for every row.
    shared : bool
        Place the PEs and the rounding unit as shared-module instances (default), or
        as ordinary submodules.

    Members
    -------
    i_ready, i_refuse : In(1)
        The array's ``o_result.ready`` and ``slot_out.valid & ~o_result.ready``: the
        inputs of the enable copies.
    i_act, o_act : In/Out(unsigned(R * act_bits))
        Activation of each row (row r at bits ``[r * act_bits, (r + 1) * act_bits)``),
        from the left and to the right.
    i_swap, o_swap : In/Out(R)
        Tile-start token of each row.
    i_mode, o_mode : In/Out(unsigned(R * tile_mode_layout().size))
        (FP8 build only) Mode of each row's activation (packed likewise).
    i_w_data, i_w_we, i_w_row : In(signed(weight_bits)), In(1), In(range(R))
        Shadow weight write and the row it is for.
    o_sum : Out(signed(acc_bits))
        The column's sum (INT32, or binary32 bits in FP8 tiles).

    Latency: 1 cycle from ``i_act`` to ``o_act`` (every row); from an activation
    entering row R-1 to its sum on ``o_sum``, ``product_stages + 1`` cycles, plus
    ``FixedToF32.STAGES`` in the FP8 build. The enable copies are registers
    (1 cycle from ``i_refuse``).
    """

    def __init__(self, config: SystolicConfig, pes: list | None = None, *,
                 shared: bool = True):
        self._config = config
        self._pes = pes
        self._shared = shared
        R = config.rows
        # plain bit vectors, row r at bits [r * width, (r + 1) * width): an ArrayLayout
        # port would name every element's fields in the parent (R x C wires)
        act = unsigned(config.act_bits * R)
        members = {
            "i_ready": In(1), "i_refuse": In(1),
            "i_act": In(act), "o_act": Out(act),
            "i_swap": In(R), "o_swap": Out(R),
            "i_w_data": In(signed(config.weight_bits)), "i_w_we": In(1),
            "i_w_row": In(range(max(R, 2))),
            "o_sum": Out(signed(config.acc_bits)),
        }
        if config.fp8:
            mode = unsigned(tile_mode_layout().size * R)
            members |= {"i_mode": In(mode), "o_mode": Out(mode)}
        super().__init__(members)

    def _en_copy(self, m: Module, name: str):
        """A copy of the array's advance enable from its own skid-flag register."""
        cp = Signal(name=f"skid_v_{name}")
        m.d.sync += cp.eq(Mux(cp, ~self.i_ready, self.i_refuse))
        return ~cp

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        R = cfg.rows
        pes = []
        for r in range(R):
            pe = ProcessingElement(cfg) if self._pes is None else self._pes[r]
            if self._shared:
                pe = shared_instance(m, pe, f"pe_{r}", key=cfg)
            else:
                m.submodules[f"pe_{r}"] = pe
            pes.append(pe)
        aw, mw = cfg.act_bits, tile_mode_layout().size
        for r, pe in enumerate(pes):
            m.d.comb += [
                pe.i_en.eq(self._en_copy(m, f"pe_{r}")),
                pe.i_act.eq(self.i_act[r * aw:(r + 1) * aw]),
                self.o_act[r * aw:(r + 1) * aw].eq(pe.o_act),
                pe.i_swap.eq(self.i_swap[r]), self.o_swap[r].eq(pe.o_swap),
                pe.i_psum.eq(pes[r - 1].o_psum if r else 0),
                pe.i_w_data.eq(self.i_w_data),
                pe.i_w_we.eq(self.i_w_we & (self.i_w_row == r)),
            ]
            if cfg.fp8:
                m.d.comb += [pe.i_mode.eq(self.i_mode[r * mw:(r + 1) * mw]),
                             self.o_mode[r * mw:(r + 1) * mw].eq(pe.o_mode)]
        bottom = pes[R - 1]
        if cfg.fp8:
            rnd = FixedToF32(acc_fixed_bits(R))
            if self._shared:
                rnd = shared_instance(m, rnd, "round", key=acc_fixed_bits(R))
            else:
                m.submodules.round = rnd
            # The bottom PE's o_psum holds the sum of the activation whose mode
            # o_mode showed product_stages cycles earlier.
            fp = Signal(name="fp_bottom")
            m.d.comb += fp.eq(bottom.o_mode.mode == PEMode.FP8)
            en = self._en_copy(m, "round")
            for i in range(cfg.product_stages):
                reg = Signal(name=f"fp_out_d{i + 1}")
                with m.If(en):
                    m.d.sync += reg.eq(fp)
                fp = reg
            m.d.comb += [rnd.i_en.eq(en), rnd.i_sum.eq(bottom.o_psum), rnd.i_fp.eq(fp),
                         self.o_sum.eq(rnd.o_result)]
        else:
            m.d.comb += self.o_sum.eq(bottom.o_psum)
        return m
