"""Weight-stationary R x C systolic array with double-buffered weights."""
from amaranth import Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from models.config import SystolicConfig
from rtl.shared_module import SharedInstance
from rtl.systolic.pe import FP8Fmt, PEMode, ProcessingElement, tile_mode_layout

__all__ = ["SystolicArray", "weight_layout", "act_layout", "result_layout",
           "PEMode", "FP8Fmt", "tile_mode_layout"]


def weight_layout(config: SystolicConfig) -> data.StructLayout:
    """One row of a weight tile: ``data[c]`` is W[k0 + row, n0 + c] (INT8 value or FP8 code).

    ``mode`` (:func:`rtl.systolic.pe.tile_mode_layout`) of the tile's *first* row (row 0)
    selects the arithmetic of the whole tile; the other rows' ``mode`` is ignored. It is
    the last field, so a payload packed without it (all zeros) is an INT8 tile.
    """
    return data.StructLayout({
        "data": data.ArrayLayout(signed(config.weight_bits), config.cols),
        "mode": tile_mode_layout(),
    })


def act_layout(config: SystolicConfig) -> data.StructLayout:
    """One activation vector: ``data[r]`` is X[m, k0 + r]; ``first``/``last`` frame a tile."""
    return data.StructLayout({
        "data": data.ArrayLayout(signed(config.act_bits), config.rows),
        "first": 1,
        "last": 1,
    })


def result_layout(config: SystolicConfig) -> data.StructLayout:
    """One result vector: ``data[c]`` is sum_r X[m, k0 + r] * W[k0 + r, n0 + c].

    INT32 in INT8 tiles, binary32 bits in FP8 tiles (summed in increasing r from +0).
    """
    return data.StructLayout({
        "data": data.ArrayLayout(signed(config.acc_bits), config.cols),
        "first": 1,
        "last": 1,
    })


class SystolicArray(wiring.Component):
    """Weight-stationary systolic array (TPU style) with shadow weights.

    A *tile* is R weight rows followed by M >= 1 activation vectors. Weight rows are
    sent on ``i_weight`` (row 0 first, R beats per tile) and land in the PEs' shadow
    registers; the activation vector flagged ``first`` swaps the shadow tile in, and the
    next tile's weights may start loading in that same cycle. Activation element r
    enters PE row r skewed by r cycles and moves right; partial sums move down; column c
    leaves the bottom row and is delayed by C-1-c cycles, so each result vector leaves
    de-skewed, with the ``first``/``last`` flags of the activation vector it came from.

    Weight writes are skewed too: a weight row is broadcast down the columns, column c
    written c cycles after the beat is accepted. PE (r, c) therefore has its shadow
    rewritten no earlier than the cycle in which the previous swap token reads it, so a
    new tile loads while the current one computes and consecutive tiles stream without
    bubbles whenever M >= R (tile period = max(M, R) cycles).

    Modes (run time, per tile): row 0 of a tile's weights carries its ``mode`` (INT8, or
    FP8 with a format per operand). The array latches it into ``next_mode`` when that
    row is accepted and copies it to ``cur_mode`` with the swap (the tile's ``first``
    activation). Every activation enters row r together with its tile's mode (same
    skew) and the mode moves right with it, so each MAC uses the mode of the tile its
    activation belongs to and consecutive tiles of different modes stream without a
    bubble. After reset the mode is INT8. An array built with ``config.fp8 = False``
    has no FP8 datapath and no mode registers: it ignores ``mode`` (INT8 always). In FP8 mode the partial sums are binary32:
    row 0 adds its product to +0.0 and each row below adds its own (k increasing),
    which is ``models.fp8.gemm_fp8(..., tile_k=R)`` for one tile; combining the K tiles
    is left to the consumer (accumulator), in increasing k0. K rows past the end of the
    matrix must be zero codes in both operands (``0 * inf`` would be NaN).

    Stall policy: the whole array advances when ``o_result`` is not holding an
    unaccepted result (``en = ~o_result.valid | o_result.ready``); while it holds, no
    input is accepted and nothing moves. Input bubbles (``i_act.valid`` low) travel
    through as empty slots and produce no output.

    Golden model: ``models.systolic.SystolicArrayModel`` (per-tile outputs, both modes),
    ``models.systolic.gemm_int8`` and ``models.fp8.gemm_fp8`` (whole GEMMs). Cycle model:
    ``models.systolic.array_cycles``.

    Parameters
    ----------
    config : SystolicConfig
        Array shape (R = ``rows``, C = ``cols``) and datapath widths.

    Members
    -------
    i_weight : In(stream.Signature(weight_layout(config)))
        Weight rows of the next tile.
    i_act : In(stream.Signature(act_layout(config)))
        Activation vectors. A ``first`` vector waits (ready low) until the R rows of the
        next tile have been loaded.
    o_result : Out(stream.Signature(result_layout(config)))
        One result vector per accepted activation vector, in order.

    Latency: R + C - 1 cycles from ``i_act`` accepted to ``o_result.valid`` (without
    stalls), in both modes. Throughput: one activation vector per cycle, R x C MACs per
    cycle.
    """

    def __init__(self, config: SystolicConfig, *, shared_pe: bool = True):
        if not isinstance(config, SystolicConfig):
            raise TypeError(f"SystolicArray needs a SystolicConfig, got {config!r}")
        self._config = config
        self._shared_pe = shared_pe
        self._pe_modules: dict[str, wiring.Component] = {}
        super().__init__({
            "i_weight": In(stream.Signature(weight_layout(config))),
            "i_act": In(stream.Signature(act_layout(config))),
            "o_result": Out(stream.Signature(result_layout(config))),
        })

    @property
    def config(self) -> SystolicConfig:
        return self._config

    def make_pe(self, row: int, col: int) -> wiring.Component:
        """The PE at (row, col); testbenches override this to inject faults."""
        return ProcessingElement(self._config)

    def verilog_submodules(self) -> dict[str, wiring.Component]:
        """PE modules the emitted Verilog instantiates (filled in by elaboration)."""
        return dict(self._pe_modules)

    def _place_pe(self, m: Module, row: int, col: int):
        """Add the PE at (row, col): a shared Verilog module instance, or a submodule."""
        pe = self.make_pe(row, col)
        if not self._shared_pe:
            m.submodules[f"pe_{row}_{col}"] = pe
            return pe
        kind = "".join("_" + ch.lower() if ch.isupper() else ch for ch in type(pe).__name__)
        module = f"jalapeno{kind}_{'fp8' if self._config.fp8 else 'int8'}"
        if module in self._pe_modules:
            pe._MustUse__silence = True     # the first one of its kind is the one emitted
        else:
            self._pe_modules[module] = pe
        inst = SharedInstance(pe, module, f"pe_{row}_{col}")
        m.submodules[f"pe_{row}_{col}"] = inst.instance()
        return inst

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        R, C = cfg.rows, cfg.cols
        en = Signal()

        def delayed(sig, n, name):
            """``sig`` delayed by ``n`` advancing cycles (a shift register under ``en``)."""
            for i in range(n):
                reg = Signal.like(sig, name=f"{name}_d{i + 1}")
                with m.If(en):
                    m.d.sync += reg.eq(sig)
                sig = reg
            return sig

        # --- weight loading: row counter and the accept rule --------------------------
        wcount = Signal(range(R + 1))           # shadow rows loaded for the next tile
        act_fire = self.i_act.valid & self.i_act.ready
        swap = act_fire & self.i_act.payload.first
        m.d.comb += [
            en.eq(~self.o_result.valid | self.o_result.ready),
            self.i_act.ready.eq(en & (~self.i_act.payload.first | (wcount == R))),
            self.i_weight.ready.eq(en & ((wcount != R) | swap)),
        ]
        w_fire = self.i_weight.valid & self.i_weight.ready
        with m.If(swap & w_fire):
            m.d.sync += wcount.eq(1)
        with m.Elif(swap):
            m.d.sync += wcount.eq(0)
        with m.Elif(w_fire):
            m.d.sync += wcount.eq(wcount + 1)
        w_row = Signal(range(R))
        m.d.comb += w_row.eq(Mux(swap, 0, wcount))

        # --- tile mode: latched from weight row 0, switched in by the swap ------------
        act_mode = Signal(tile_mode_layout())
        if cfg.fp8:
            next_mode = Signal(tile_mode_layout())
            cur_mode = Signal(tile_mode_layout())
            with m.If(w_fire & (w_row == 0)):
                m.d.sync += next_mode.eq(self.i_weight.payload.mode)
            with m.If(swap):
                m.d.sync += cur_mode.eq(next_mode)
            m.d.comb += act_mode.eq(Mux(swap, next_mode, cur_mode))

        # --- the PE grid ----------------------------------------------------------------
        pes = [[self._place_pe(m, r, c) for c in range(C)] for r in range(R)]
        for r in range(R):
            for c in range(C):
                pe = pes[r][c]
                m.d.comb += pe.en.eq(en)
                left = pes[r][c - 1] if c else None
                up = pes[r - 1][c] if r else None
                if left is not None:
                    m.d.comb += [pe.a_in.eq(left.a_out), pe.swap_in.eq(left.swap_out)]
                    if cfg.fp8:
                        m.d.comb += pe.mode_in.eq(left.mode_out)
                if up is not None:
                    m.d.comb += pe.p_in.eq(up.p_out)
                else:
                    m.d.comb += pe.p_in.eq(0)

        # Activations and the swap token enter row r after r cycles of skew.
        # Empty slots carry zeros so that waveforms show only real data.
        for r in range(R):
            a_r = Signal(signed(cfg.act_bits), name=f"a_in_{r}")
            s_r = Signal(name=f"swap_in_{r}")
            m.d.comb += [a_r.eq(Mux(act_fire, self.i_act.payload.data[r], 0)), s_r.eq(swap)]
            m.d.comb += [
                pes[r][0].a_in.eq(delayed(a_r, r, f"a_skew_{r}")),
                pes[r][0].swap_in.eq(delayed(s_r, r, f"swap_skew_{r}")),
            ]
            if cfg.fp8:
                md_r = Signal(tile_mode_layout(), name=f"mode_in_{r}")
                m.d.comb += md_r.eq(act_mode)
                m.d.comb += pes[r][0].mode_in.eq(delayed(md_r, r, f"mode_skew_{r}"))

        # Weight rows: column c is written c cycles after the beat (diagonal load).
        for c in range(C):
            wd = Signal(signed(cfg.weight_bits), name=f"w_data_{c}")
            we = Signal(name=f"w_we_{c}")
            wr = Signal(range(R), name=f"w_row_{c}")
            m.d.comb += [wd.eq(self.i_weight.payload.data[c]), we.eq(w_fire), wr.eq(w_row)]
            wd, we, wr = (delayed(s, c, f"{s.name}_skew") for s in (wd, we, wr))
            for r in range(R):
                m.d.comb += [pes[r][c].w_data.eq(wd), pes[r][c].w_we.eq(we & (wr == r))]

        # Results: column c delayed by C-1-c so that a vector leaves at once.
        out = Signal(self.o_result.payload.data.shape())
        for c in range(C):
            col = Signal(signed(cfg.acc_bits), name=f"p_out_{c}")
            m.d.comb += col.eq(pes[R - 1][c].p_out)
            m.d.comb += out[c].eq(delayed(col, C - 1 - c, f"p_deskew_{c}"))

        # Slot valid and framing flags: R + C - 1 cycles, the pipeline's latency.
        slot = Signal(data.StructLayout({"valid": 1, "first": 1, "last": 1}))
        m.d.comb += [
            slot.valid.eq(act_fire),
            slot.first.eq(self.i_act.payload.first),
            slot.last.eq(self.i_act.payload.last),
        ]
        slot_out = delayed(slot, R + C - 1, "slot")
        m.d.comb += [
            self.o_result.valid.eq(slot_out.valid),
            self.o_result.payload.data.eq(out),
            self.o_result.payload.first.eq(slot_out.first),
            self.o_result.payload.last.eq(slot_out.last),
        ]
        return m
