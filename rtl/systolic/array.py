# amaranth: UnusedElaboratable=no
"""Weight-stationary R x C systolic array with double-buffered weights.

(The pragma above: with shared columns, only the first column of each Verilog module
is elaborated; the others are created for their signature, see :mod:`rtl.lib.shared`.)
"""
from amaranth import Cat, Module, Mux, Signal, Value, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from models.config import SystolicConfig
from rtl.fp.fixed_to_f32 import FixedToF32
from rtl.lib.shared import shared_instance
from rtl.systolic.pe import FP8Fmt, PEMode, ProcessingElement, tile_mode_layout
from rtl.systolic.column import SystolicColumn

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
    has no FP8 datapath and no mode registers: it ignores ``mode`` (INT8 always).

    In FP8 mode the partial sums are exact: every PE adds its FP8 product (an integer
    in units of ``2**-32``) to a two's-complement word of ``acc_fixed_bits(R)`` bits
    that cannot overflow, with NaN / ``+inf`` / ``-inf`` flags beside it, and a
    :class:`rtl.fp.fixed_to_f32.FixedToF32` under each column rounds the column sum
    once to binary32 (ties to even, exact zero ``+0``). That is
    ``models.fp8.gemm_fp8(..., tile_k=R)`` for one tile; combining the K tiles is left
    to the consumer (accumulator), in increasing k0. INT8 tiles use the same adders and
    take the low 32 bits. K rows past the end of the matrix must be zero codes in both
    operands (``0 * inf`` would be NaN).

    Stall policy: the whole array advances unless its output skid register holds a
    result (``en = ~skid_v``, a register, so the global enable and the input ready
    signals do not depend on ``o_result.ready``). A result refused by the consumer
    while the array advances moves into the skid register; the array then stalls, no
    input is accepted and nothing moves, until the consumer has taken the skid
    register (the array restarts the cycle after). Without backpressure the array
    never stalls; under backpressure a refused result costs its stalled cycles plus
    one. Input bubbles (``i_act.valid`` low) travel
    through as empty slots and produce no output.

    Golden model: ``models.systolic.SystolicArrayModel`` (per-tile outputs, both modes),
    ``models.systolic.gemm_int8`` and ``models.fp8.gemm_fp8`` (whole GEMMs). Cycle model:
    ``models.systolic.array_cycles``.

    Parameters
    ----------
    config : SystolicConfig
        Array shape (R = ``rows``, C = ``cols``) and datapath widths.
    shared_pe : bool
        Place the C columns (:class:`rtl.systolic.column.SystolicColumn`, each R PEs
        and the column's rounding unit) as instances of one shared Verilog module, and
        in it the PEs as instances of the shared PE module
        (:func:`rtl.lib.shared.shared_instance`, keyed by ``config``; default), instead
        of ordinary submodules (R x C PEs flattened per instance). Amaranth's Python
        simulator works with either (outside the Verilog writer shared instances are
        ordinary submodules).

    Members
    -------
    i_weight : In(stream.Signature(weight_layout(config)))
        Weight rows of the next tile.
    i_act : In(stream.Signature(act_layout(config)))
        Activation vectors. A ``first`` vector waits (ready low) until the R rows of the
        next tile have been loaded.
    o_result : Out(stream.Signature(result_layout(config)))
        One result vector per accepted activation vector, in order.

    Latency: ``config.latency`` cycles from ``i_act`` accepted to ``o_result.valid``
    (without stalls), in both modes: one input register, R + C - 1 for the skew and
    the column, ``config.product_stages`` for the PEs' pipeline (2 INT8-only, 3 FP8;
    every PE delays its sum by as many cycles, so the skew is unchanged), plus
    ``FixedToF32.STAGES`` (4) for the rounding when the FP8 datapath is built:
    R + C + 2 (INT8-only) or R + C + 7 (FP8). Throughput: one activation vector per
    cycle, R x C MACs per cycle.
    """

    def __init__(self, config: SystolicConfig, *, shared_pe: bool = True):
        if not isinstance(config, SystolicConfig):
            raise TypeError(f"SystolicArray needs a SystolicConfig, got {config!r}")
        self._config = config
        self._shared_pe = shared_pe
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

    def elaborate(self, platform):
        m = Module()
        en = Signal()
        refuse = Signal()
        act_fire, swap, w_fire, w_row = self._weight_load(m, en)
        act_mode = self._tile_mode(m, swap, w_fire, w_row)
        cols = self._columns(m, refuse)
        self._feed_acts(m, en, cols, act_fire, swap, act_mode)
        self._feed_weights(m, en, cols, w_fire, w_row)
        self._drain_results(m, en, refuse, cols, act_fire)
        return m

    @staticmethod
    def _delayed(m: Module, en, sig, n: int, name: str, *, reset_less: bool = False):
        """``sig`` delayed by ``n`` advancing cycles (a shift register under ``en``)."""
        return SystolicArray._taps(m, en, sig, n, name, reset_less=reset_less)[n]

    @staticmethod
    def _taps(m: Module, en, sig, n: int, name: str, *, reset_less: bool = False) -> list:
        """``[sig, sig delayed by 1, ..., by n]``: one shift register under ``en``
        (``<name>_d<k>``), tapped; for a value that several rows or columns need
        with different delays (a swap token, a write enable)."""
        taps = [sig]
        for i in range(n):
            reg = Signal.like(sig, name=f"{name}_d{i + 1}", reset_less=reset_less)
            with m.If(en):
                m.d.sync += reg.eq(sig)
            sig = reg
            taps.append(sig)
        return taps

    @staticmethod
    def _skewed(m: Module, en, values: list, delays: list, name: str, *,
                reset_less: bool = False) -> list:
        """``values[i]`` delayed by ``delays[i]`` advancing cycles, as one triangle of
        shift registers: stage k is ONE register holding every value that is delayed
        by k cycles or more (``<name>_d<k>``), so the design has max(delays) signals
        instead of sum(delays) (Verilog size and emission time, docs/verilog.md).
        ``reset_less`` for data whose slot's valid flag is reset elsewhere."""
        order = sorted(range(len(values)), key=lambda i: -delays[i])
        widths = [len(Value.cast(values[i])) for i in order]
        offset = [sum(widths[:j]) for j in range(len(order) + 1)]
        out = [None] * len(values)
        prev = Cat(*(values[i] for i in order))
        for k in range(1, max(delays, default=0) + 1):
            n = sum(1 for i in order if delays[i] >= k)     # a prefix of ``order``
            reg = Signal(offset[n], name=f"{name}_d{k}", reset_less=reset_less)
            with m.If(en):
                m.d.sync += reg.eq(prev[:offset[n]])
            for j in range(n):
                if delays[order[j]] == k:
                    out[order[j]] = reg[offset[j]:offset[j + 1]]
            prev = reg
        for i in range(len(values)):
            if delays[i] == 0:
                out[i] = Value.cast(values[i])
        return out

    def _weight_load(self, m: Module, en):
        """Stall policy, the accept rules and the count of shadow rows loaded.

        Returns ``(act_fire, swap, w_fire, w_row)``: an activation accepted, the swap
        (an accepted ``first`` activation), a weight row accepted, and its row index.
        """
        R = self._config.rows
        wcount = Signal(range(R + 1))           # shadow rows loaded for the next tile
        w_full = Signal()                       # wcount == R, as a register
        act_fire = self.i_act.valid & self.i_act.ready
        swap = act_fire & self.i_act.payload.first
        # ``en`` is a register (``~skid_v``, :meth:`_drain_results`): the ready outputs
        # depend on registers and on ``i_act``'s valid/first, not on ``o_result.ready``.
        m.d.comb += [
            self.i_act.ready.eq(en & (~self.i_act.payload.first | w_full)),
            self.i_weight.ready.eq(en & (~w_full | swap)),
        ]
        w_fire = self.i_weight.valid & self.i_weight.ready
        with m.If(swap & w_fire):
            m.d.sync += [wcount.eq(1), w_full.eq(R == 1)]
        with m.Elif(swap):
            m.d.sync += [wcount.eq(0), w_full.eq(0)]
        with m.Elif(w_fire):
            m.d.sync += [wcount.eq(wcount + 1), w_full.eq(wcount == R - 1)]
        w_row = Signal(range(R))
        m.d.comb += w_row.eq(Mux(swap, 0, wcount))
        return act_fire, swap, w_fire, w_row

    def _tile_mode(self, m: Module, swap, w_fire, w_row):
        """The mode of the entering activation: latched from weight row 0, switched in
        by the swap (constant INT8 without the FP8 datapath)."""
        act_mode = Signal(tile_mode_layout())
        if self._config.fp8:
            next_mode = Signal(tile_mode_layout())
            cur_mode = Signal(tile_mode_layout())
            with m.If(w_fire & (w_row == 0)):
                m.d.sync += next_mode.eq(self.i_weight.payload.mode)
            with m.If(swap):
                m.d.sync += cur_mode.eq(next_mode)
            m.d.comb += act_mode.eq(Mux(swap, next_mode, cur_mode))
        return act_mode

    def _columns(self, m: Module, refuse) -> list:
        """Place the C columns (:class:`rtl.systolic.column.SystolicColumn`: R PEs and the
        rounding) and connect neighbours: activations, swap tokens and modes move
        right from column to column.

        Shared (Verilog writer active), the columns are instances of one module keyed
        by the config, so the writer elaborates one column of R PE instances. If a
        subclass overrides :meth:`make_pe` (fault injection), each column gets the PEs
        it returns and is keyed by their classes too: a column holding a replaced PE
        is a module of its own."""
        cfg = self._config
        custom = type(self).make_pe is not SystolicArray.make_pe
        cols = []
        for c in range(cfg.cols):
            pes = [self.make_pe(r, c) for r in range(cfg.rows)] if custom else None
            col = SystolicColumn(cfg, pes, shared=self._shared_pe)
            key = cfg if pes is None else (cfg, tuple(type(p).__qualname__ for p in pes))
            name = f"col_{c}"
            if self._shared_pe:
                col = shared_instance(m, col, name, key=key)
            else:
                m.submodules[name] = col
            cols.append(col)
        for c, col in enumerate(cols):
            m.d.comb += [col.i_ready.eq(self.o_result.ready), col.i_refuse.eq(refuse)]
            if c:
                left = cols[c - 1]
                m.d.comb += [col.i_act.eq(left.o_act), col.i_swap.eq(left.o_swap)]
                if cfg.fp8:
                    m.d.comb += col.i_mode.eq(left.o_mode)
        return cols

    def _feed_acts(self, m: Module, en, cols, act_fire, swap, act_mode):
        """Activations, the swap token and the mode enter row r after r cycles of skew,
        behind one input register (row 0 included): the accept logic, which depends on
        ``o_result.ready``, then drives registers only, not the PEs' arithmetic. Empty
        slots carry zeros so that waveforms show only real data."""
        cfg = self._config
        R = cfg.rows
        first = cols[0]
        a_in = [Mux(act_fire, self.i_act.payload.data[r], 0) for r in range(R)]
        delays = [r + 1 for r in range(R)]
        a = self._skewed(m, en, a_in, delays, "a_skew", reset_less=True)
        # the swap token and the mode are the same for every row: one shift register
        # each, row r tapping it after r + 1 stages
        sw = self._taps(m, en, swap, R, "swap_skew")
        m.d.comb += [first.i_act.eq(Cat(*a)), first.i_swap.eq(Cat(*sw[1:]))]
        if cfg.fp8:
            mode_in = Signal(tile_mode_layout(), name="mode_in")
            m.d.comb += mode_in.eq(act_mode)
            md = self._taps(m, en, mode_in, R, "mode_skew")
            m.d.comb += first.i_mode.eq(Cat(*md[1:]))

    def _feed_weights(self, m: Module, en, cols, w_fire, w_row):
        """Weight rows: column c is written c cycles after the beat (diagonal load),
        plus the input register that the activations also pass (so the order of a
        shadow write and the swap token that reads it is as without it)."""
        cfg = self._config
        C = cfg.cols
        delays = [c + 1 for c in range(C)]
        wd = self._skewed(m, en, [self.i_weight.payload.data[c] for c in range(C)], delays,
                          "w_data_skew", reset_less=True)
        # the write enable and the row index are the same for every column: one shift
        # register each, column c tapping it after c + 1 stages
        we = self._taps(m, en, w_fire, C, "w_we_skew")
        wr_in = Signal(range(cfg.rows), name="w_row_in")
        m.d.comb += wr_in.eq(w_row)
        wr = self._taps(m, en, wr_in, C, "w_row_skew", reset_less=True)
        for c, col in enumerate(cols):
            m.d.comb += [col.i_w_data.eq(wd[c]), col.i_w_we.eq(we[c + 1]),
                         col.i_w_row.eq(wr[c + 1])]

    def _drain_results(self, m: Module, en, refuse, cols, act_fire):
        """Column c's sum (rounded in the column when FP8 is built) delayed by C-1-c
        so that a vector leaves at once; the slot's valid and framing flags delayed by
        the pipeline latency; the output skid register and the stall."""
        cfg = self._config
        R, C = cfg.rows, cfg.cols
        assert cfg.latency == R + C + cfg.product_stages + (FixedToF32.STAGES if cfg.fp8 else 0)
        out = Signal(self.o_result.payload.data.shape())
        sums = self._skewed(m, en, [col.o_sum for col in cols], [C - 1 - c for c in range(C)],
                            "p_deskew", reset_less=True)
        m.d.comb += out.eq(Cat(*sums))

        slot = Signal(data.StructLayout({"valid": 1, "first": 1, "last": 1}))
        m.d.comb += [
            slot.valid.eq(act_fire),
            slot.first.eq(self.i_act.payload.first),
            slot.last.eq(self.i_act.payload.last),
        ]
        slot_out = self._delayed(m, en, slot, cfg.latency, "slot")
        # Output skid register: when the consumer refuses a result while the array
        # advances, the result waits here and the array stalls (``en = ~skid_v``) until
        # it has been taken. ``en`` is thus a register, not a function of ``o_result.ready``.
        # The PEs and rounding units run from copies of skid_v in their columns
        # (:class:`rtl.systolic.column.SystolicColumn`), each with the next state
        # ``Mux(copy, ~o_result.ready, refuse)``: synthesis does not merge them (each
        # reads itself), and each drives one unit's clock enables instead of all.
        skid_v = Signal()
        skid = Signal(self.o_result.payload.shape(), reset_less=True)   # valid: skid_v
        main = Signal(self.o_result.payload.shape())
        m.d.comb += [
            refuse.eq(slot_out.valid & ~self.o_result.ready),
            en.eq(~skid_v),
            main.data.eq(out),
            main.first.eq(slot_out.first),
            main.last.eq(slot_out.last),
        ]
        with m.If(skid_v):
            m.d.comb += [self.o_result.valid.eq(1), self.o_result.payload.eq(skid)]
            with m.If(self.o_result.ready):
                m.d.sync += skid_v.eq(0)
        with m.Else():
            m.d.comb += [self.o_result.valid.eq(slot_out.valid), self.o_result.payload.eq(main)]
            with m.If(slot_out.valid & ~self.o_result.ready):
                m.d.sync += [skid_v.eq(1), skid.eq(main)]
