"""The MoE dispatch unit (``moe_dispatch``): step 3 of ``models.moe`` in hardware.

Golden model: :mod:`models.moe_dispatch` (descriptor, checks, error codes), whose
``execute`` calls ``models.moe.dispatch``; the unit is bit-exact to it (docs/moe_dispatch.md).
"""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, enum, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from models import moe_dispatch as model
from models.axi import BOUNDARY_BYTES, Burst, Resp
from models.axi_noc import max_beats, slots
from models.config import JalapenoConfig
from models.moe import MAX_TOP_K
from models.moe_dispatch import DispatchError, Policy
from rtl.lib.axi import AxiSignature
from rtl.lib.mux import select

__all__ = ["MoeDispatch", "desc_layout", "done_layout", "max_reads", "write_chunk"]


def max_reads(cfg: JalapenoConfig) -> int:
    """Single-beat ranking reads in flight at most: the bridge's reorder slots
    (``models.axi_noc.slots``: 8 on tiny, 32 on default), so the reads fill it."""
    return slots(cfg)


def desc_layout() -> data.StructLayout:
    """One :class:`models.moe_dispatch.Descriptor` (fields LSB first, FIELD_BITS order)."""
    return data.StructLayout(model.FIELD_BITS)


def done_layout() -> data.StructLayout:
    """The unit's completion: the :class:`models.moe_dispatch.DispatchError` and the
    run's kept and dropped assignments (DISPATCH_KEPT / DISPATCH_DROPPED)."""
    return data.StructLayout({"err": model.ERR_BITS, "kept": 32, "dropped": 32})


def write_chunk(cfg: JalapenoConfig) -> int:
    """Write bursts never cross a multiple of this many bytes (4 KiB, the HBM
    interleave granule and the bridge's longest burst)."""
    return min(BOUNDARY_BYTES, cfg.hbm.interleave_bytes, max_beats(cfg) * cfg.hbm.data_bytes)


class _S(enum.Enum, shape=4):
    IDLE = 0
    CHECK = 1
    LOAD = 2
    ADMIT0 = 3
    ADMIT = 4
    PREFIX = 5
    PLACE0 = 6
    PLACE = 7
    WSTART = 8
    WAW = 9
    WCAP = 10
    WW = 11
    WB = 12
    DONE = 13


def _log2(x: int) -> int:
    return x.bit_length() - 1


class MoeDispatch(wiring.Component):
    """Capacity-limited top-k dispatch of a ranking table in HBM (``models.moe_dispatch``).

    Parameters
    ----------
    config : JalapenoConfig
        ``soc.dispatch_tokens`` (T_max: memory depths), ``soc.dispatch_experts`` (E_max),
        ``soc.watchdog_cycles`` (AXI wait bound), ``hbm`` (beat width, size, ID bits,
        interleave), ``dma`` / ``noc`` (the bridge's longest burst).

    Members
    -------
    m_axi : Out(AxiSignature(addr_width=32, data_width=8 * hbm.data_bytes, id_width=hbm.id_bits))
        Reads: single-beat INCR bursts (ID 0), up to :func:`max_reads` in flight, R in
        order. Writes: one INCR burst at a time, never across :func:`write_chunk`, WSTRB
        on whole 32-bit words.
    i_start : In(stream.Signature(desc_layout()))
        A descriptor; taken when the unit is idle.
    o_done : Out(stream.Signature(done_layout()))
        One completion per descriptor (``err`` 0: the tables are written).

    Phases and latency (cycles, T tokens, E experts, k choices): check 1; load: one
    read per beat of each ranking row (``ceil((rank_addr % W + E) / W)`` beats), up to
    :func:`max_reads` in flight; admission ``T k + P + 1`` (P reroute probes: one
    assignment or one probe per cycle, choice-major); prefix sum 1; placement
    ``T k + 1`` (token order); writes: one cycle per 32-bit word plus one per beat plus
    the AW / B handshakes of each burst (slot table ``T k`` words, slot_token ``kept``,
    counters ``2E + 3``). Every AXI wait is bounded by ``soc.watchdog_cycles``
    (TIMEOUT).
    """

    def __init__(self, config: JalapenoConfig):
        self.cfg = config.check_chip()
        h = config.hbm
        super().__init__({
            "m_axi": Out(AxiSignature(addr_width=32, data_width=8 * h.data_bytes,
                                      id_width=h.id_bits)),
            "i_start": In(stream.Signature(desc_layout())),
            "o_done": Out(stream.Signature(done_layout())),
        })

    def elaborate(self, platform):
        m = Module()
        cfg, soc = self.cfg, self.cfg.soc
        W = cfg.hbm.data_bytes
        lw = _log2(W)
        TM, EM, K = soc.dispatch_tokens, soc.dispatch_experts, MAX_TOP_K
        idb = max(1, (EM - 1).bit_length())
        sbits = (TM * K).bit_length()
        tbits = max(1, (TM - 1).bit_length())
        ax = self.m_axi

        st = Signal(_S)
        d = Signal(desc_layout())
        err = Signal(model.ERR_BITS)

        # --- memories ------------------------------------------------------------------------
        m.submodules.rank = rank = memory.Memory(shape=unsigned(idb * EM), depth=TM, init=[])
        m.submodules.ptrm = ptrm = memory.Memory(shape=unsigned(5), depth=TM, init=[])
        m.submodules.asg = asg = memory.Memory(shape=unsigned(1 + idb), depth=TM * K, init=[])
        m.submodules.slot = slot = memory.Memory(shape=unsigned(1 + sbits), depth=TM * K,
                                                 init=[])
        m.submodules.stok = stok = memory.Memory(shape=unsigned(tbits), depth=TM * K, init=[])
        rank_w = rank.write_port(granularity=idb)
        rank_r = rank.read_port()
        ptr_w = ptrm.write_port()
        ptr_r = ptrm.read_port(transparent_for=(ptr_w,))
        asg_w, asg_r = asg.write_port(), asg.read_port()
        slot_w, slot_r = slot.write_port(), slot.read_port()
        stok_w, stok_r = stok.write_port(), stok.read_port()

        counts = [Signal(16, name=f"count{e}") for e in range(EM)]
        offs = [Signal(sbits, name=f"offset{e}") for e in range(EM)]
        fill = [Signal(16, name=f"fill{e}") for e in range(EM)]
        dropped, dtok, kept = Signal(32), Signal(32), Signal(32)

        # --- watchdog: cycles since the last AXI handshake while waiting on AXI ---------
        wd = Signal(range(soc.watchdog_cycles + 1))
        hs = Signal()
        m.d.comb += hs.eq((ax.arvalid & ax.arready) | (ax.rvalid & ax.rready) |
                          (ax.awvalid & ax.awready) | (ax.wvalid & ax.wready) |
                          (ax.bvalid & ax.bready))
        waiting = Signal()
        m.d.sync += wd.eq(Mux(hs | ~waiting, 0, wd + 1))
        bite = waiting & (wd == soc.watchdog_cycles)

        # --- constant AXI fields ---------------------------------------------------------
        m.d.comb += [ax.arid.eq(0), ax.arlen.eq(0), ax.arsize.eq(lw),
                     ax.arburst.eq(int(Burst.INCR)), ax.awid.eq(0), ax.awsize.eq(lw),
                     ax.awburst.eq(int(Burst.INCR)), ax.rready.eq(1)]

        # --- idle / check / done --------------------------------------------------------------
        m.d.comb += [self.i_start.ready.eq(st == _S.IDLE),
                     self.o_done.valid.eq(st == _S.DONE),
                     self.o_done.payload.err.eq(err),
                     self.o_done.payload.kept.eq(kept),
                     self.o_done.payload.dropped.eq(dropped)]
        check = self._check(m, d)

        def finish(code):
            return [err.eq(code), st.eq(_S.DONE)]

        with m.If(st == _S.IDLE):
            with m.If(self.i_start.valid):
                m.d.sync += [d.eq(self.i_start.payload), st.eq(_S.CHECK), err.eq(0),
                             kept.eq(0), dropped.eq(0), dtok.eq(0)]
        with m.If(st == _S.CHECK):
            with m.If(check != 0):
                m.d.sync += finish(check)
            with m.Else():
                m.d.sync += [c.eq(0) for c in counts] + [st.eq(_S.LOAD)]
        with m.If((st == _S.DONE) & self.o_done.ready):
            m.d.sync += st.eq(_S.IDLE)

        self._load(m, st, d, err, rank_w, waiting, bite, finish, lw, idb, EM)
        self._admit(m, st, d, counts, rank_r, ptr_r, ptr_w, asg_w, idb, EM)
        self._place(m, st, d, counts, offs, fill, asg_r, slot_w, stok_w, dropped, dtok,
                    kept, idb, EM, sbits)
        self._write(m, st, d, err, slot_r, stok_r, counts, offs, dropped, dtok, kept,
                    waiting, bite, finish, lw, EM, sbits)
        return m

    # --- up-front checks (models.moe_dispatch.check, same order) -------------------------
    def _check(self, m, d):
        cfg, soc = self.cfg, self.cfg.soc
        T, E, k = d.tokens, d.experts, d.top_k
        code = Signal(model.ERR_BITS)
        rank_end = Signal(50)
        slot_n = Signal(24)
        m.d.comb += [rank_end.eq(d.rank_addr + (T - 1) * d.rank_stride + E),
                     slot_n.eq(T * k * 4)]
        hbm = cfg.hbm.total_bytes
        mis = ((d.rank_addr[:2] != 0) | (d.slot_addr[:2] != 0) | (d.slot_token_addr[:2] != 0)
               | (d.counts_addr[:2] != 0) | ((T > 1) & (d.rank_stride[:2] != 0)))
        window = ((rank_end > hbm) | (d.slot_addr + slot_n > hbm)
                  | (d.slot_token_addr + slot_n > hbm)
                  | (d.counts_addr + 4 * (2 * E + 3) > hbm))
        rules = [((T == 0) | (T > soc.dispatch_tokens), DispatchError.BAD_TOKENS),
                 ((E == 0) | (E > soc.dispatch_experts), DispatchError.BAD_EXPERTS),
                 ((k == 0) | (k > E) | (k > MAX_TOP_K), DispatchError.BAD_TOP_K),
                 (d.capacity == 0, DispatchError.BAD_CAPACITY),
                 (mis, DispatchError.MISALIGNED), (window, DispatchError.WINDOW)]
        out = Const(0, model.ERR_BITS)
        for cond, c in reversed(rules):
            out = Mux(cond, int(c), out)
        m.d.comb += code.eq(out)
        return code

    # --- load: the ranking rows, one single-beat read per beat ---------------------------
    def _load(self, m, st, d, err, rank_w, waiting, bite, finish, lw, idb, EM):
        ax = self.m_axi
        W = 1 << lw
        T, E = d.tokens, d.experts
        # AR side
        ar_t, ar_b, ar_a = Signal(16), Signal(3), Signal(32)
        nmax = max_reads(self.cfg)
        inflight = Signal(range(nmax + 1))
        rbad = Signal()                 # an R beat answered an error (every read still
        #                                 goes out and comes back: AXI stays legal)
        ar_beats = Signal(3)
        m.d.comb += ar_beats.eq((ar_a[:lw] + E + W - 1) >> lw)
        # once raised, arvalid stays until its handshake (inflight only falls meanwhile)
        issue = (st == _S.LOAD) & (ar_t < T) & (inflight < nmax)
        m.d.comb += [ax.arvalid.eq(issue),
                     ax.araddr.eq(Cat(Const(0, lw), ar_a[lw:]) + (ar_b << lw))]
        ar_fire = ax.arvalid & ax.arready
        r_fire = ax.rvalid & ax.rready & (st == _S.LOAD)
        m.d.sync += inflight.eq(inflight + ar_fire - r_fire)
        with m.If(ar_fire):
            with m.If(ar_b + 1 == ar_beats):
                m.d.sync += [ar_b.eq(0), ar_t.eq(ar_t + 1), ar_a.eq(ar_a + d.rank_stride)]
            with m.Else():
                m.d.sync += ar_b.eq(ar_b + 1)
        # R side
        r_t, r_b, r_a = Signal(16), Signal(3), Signal(32)
        seen = Signal(EM)
        bad = Signal()
        r_beats = Signal(3)
        m.d.comb += r_beats.eq((r_a[:lw] + E + W - 1) >> lw)
        o = r_a[:lw]
        en, ids, hit, oor = [], [], [], []
        for r in range(EM):
            pos = Signal(lw + 5, name=f"pos{r}")
            m.d.comb += pos.eq(o + r)
            byte = Signal(8, name=f"rank_byte{r}")
            m.d.comb += byte.eq(select(pos[:lw], [ax.rdata.word_select(i, 8) for i in range(W)]))
            here = (r < E) & ((pos >> lw) == r_b)
            en.append(here)
            ids.append(byte[:idb])
            hit.append(Mux(here & (byte < E), (1 << byte[:4]) & ((1 << EM) - 1), 0))
            oor.append(here & (byte >= E))
        bad_beat = Signal()
        m.d.comb += bad_beat.eq(Cat(*oor).any())
        seen_now = Signal(EM)
        m.d.comb += seen_now.eq(seen | _or(hit, EM))
        m.d.comb += [rank_w.addr.eq(r_t), rank_w.data.eq(Cat(*ids)),
                     rank_w.en.eq(Mux(r_fire & (ax.rresp == int(Resp.OKAY)), Cat(*en), 0))]
        full = Signal(EM)
        m.d.comb += full.eq((Const(1, EM + 1) << E) - 1)
        with m.If(r_fire):
            with m.If(ax.rresp != int(Resp.OKAY)):
                m.d.sync += rbad.eq(1)
            with m.If(bad_beat):
                m.d.sync += bad.eq(1)
            with m.If(r_b + 1 == r_beats):
                m.d.sync += [r_b.eq(0), r_t.eq(r_t + 1), r_a.eq(r_a + d.rank_stride),
                             seen.eq(0)]
                with m.If(seen_now != full):
                    m.d.sync += bad.eq(1)
            with m.Else():
                m.d.sync += [r_b.eq(r_b + 1), seen.eq(seen_now)]
        with m.If(st == _S.CHECK):
            m.d.sync += [ar_t.eq(0), ar_b.eq(0), ar_a.eq(d.rank_addr), r_t.eq(0), r_b.eq(0),
                         r_a.eq(d.rank_addr), seen.eq(0), bad.eq(0), rbad.eq(0),
                         inflight.eq(0)]
        with m.If(st == _S.LOAD):
            m.d.comb += waiting.eq(1)
            last_r = r_fire & (r_b + 1 == r_beats) & (r_t + 1 == T)
            with m.If(bite):
                m.d.sync += finish(DispatchError.TIMEOUT)
            with m.Elif(last_r):
                with m.If(rbad | (ax.rresp != int(Resp.OKAY))):
                    m.d.sync += finish(DispatchError.AXI)
                with m.Elif(bad | bad_beat | (seen_now != full)):
                    m.d.sync += finish(DispatchError.BAD_RANK)
                with m.Else():
                    m.d.sync += st.eq(_S.ADMIT0)

    # --- admission: choice-major, one assignment or one reroute probe per cycle ----------
    def _admit(self, m, st, d, counts, rank_r, ptr_r, ptr_w, asg_w, idb, EM):
        T, E, k, cap = d.tokens, d.experts, d.top_k, d.capacity
        t, j = Signal(16), Signal(4)
        probing = Signal()
        ptr = Signal(5)
        row = rank_r.data
        rank_of = lambda i: select(i, [row.word_select(r, idb) for r in range(EM)])  # noqa
        ptr_cur = Signal(5)
        m.d.comb += ptr_cur.eq(Mux(probing, ptr, Mux(j == 0, k, ptr_r.data)))
        e_first = Signal(idb)
        e_probe = Signal(idb)
        m.d.comb += [e_first.eq(rank_of(j)), e_probe.eq(rank_of(ptr))]
        cnt_first = select(e_first, counts)
        cnt_probe = select(e_probe, counts)
        adv = Signal()
        t_next, j_next = Signal(16), Signal(4)
        last_t = t + 1 == T
        m.d.comb += [t_next.eq(Mux(last_t, 0, t + 1)), j_next.eq(Mux(last_t, j + 1, j))]
        addr = Signal(16)
        m.d.comb += addr.eq(Mux(st == _S.ADMIT0, 0, Mux(adv, t_next, t)))
        m.d.comb += [rank_r.addr.eq(addr), ptr_r.addr.eq(addr)]
        a_valid, a_e, ptr_wb = Signal(), Signal(idb), Signal(5)
        m.d.comb += [asg_w.addr.eq(Cat(j[:3], t)), asg_w.data.eq(Cat(a_e, a_valid)),
                     asg_w.en.eq(adv), ptr_w.addr.eq(t), ptr_w.data.eq(ptr_wb),
                     ptr_w.en.eq(adv)]
        with m.If(st == _S.ADMIT0):
            m.d.sync += [t.eq(0), j.eq(0), probing.eq(0), st.eq(_S.ADMIT)]
        with m.If(st == _S.ADMIT):
            with m.If(~probing):
                m.d.comb += [a_e.eq(e_first), ptr_wb.eq(ptr_cur)]
                with m.If(cnt_first < cap):
                    m.d.comb += [adv.eq(1), a_valid.eq(1)]
                with m.Elif(d.policy == int(Policy.DROP)):
                    m.d.comb += adv.eq(1)
                with m.Else():
                    m.d.sync += [probing.eq(1), ptr.eq(ptr_cur)]
            with m.Else():
                m.d.comb += a_e.eq(e_probe)
                with m.If(ptr >= E):
                    m.d.comb += [adv.eq(1), ptr_wb.eq(ptr)]
                with m.Elif(cnt_probe < cap):
                    m.d.comb += [adv.eq(1), a_valid.eq(1), ptr_wb.eq(ptr + 1)]
                with m.Else():
                    m.d.sync += ptr.eq(ptr + 1)
            with m.If(adv):
                m.d.sync += [t.eq(t_next), j.eq(j_next), probing.eq(0)]
                with m.If(last_t & (j + 1 == k)):
                    m.d.sync += st.eq(_S.PREFIX)
            with m.If(adv & a_valid):
                for e in range(EM):
                    with m.If(a_e == e):
                        m.d.sync += counts[e].eq(counts[e] + 1)

    # --- prefix sum and token-order placement -------------------------------------------
    def _place(self, m, st, d, counts, offs, fill, asg_r, slot_w, stok_w, dropped, dtok,
               kept, idb, EM, sbits):
        T, k = d.tokens, d.top_k
        with m.If(st == _S.PREFIX):
            acc = Const(0, sbits)
            for e in range(EM):
                m.d.sync += [offs[e].eq(acc), fill[e].eq(0)]
                acc = (acc + counts[e])[:sbits]
            m.d.sync += st.eq(_S.PLACE0)
        t, j = Signal(16), Signal(4)
        jt = Signal(sbits)              # j * T
        any_kept = Signal()
        last_j = j + 1 == k
        t_next, j_next = Signal(16), Signal(4)
        m.d.comb += [t_next.eq(Mux(last_j, t + 1, t)), j_next.eq(Mux(last_j, 0, j + 1))]
        run = st == _S.PLACE
        m.d.comb += asg_r.addr.eq(Mux(st == _S.PLACE0, 0, Cat(j_next[:3], t_next)))
        valid = asg_r.data[idb]
        e = asg_r.data[:idb]
        s = Signal(sbits)
        m.d.comb += s.eq(select(e, offs) + select(e, fill))
        m.d.comb += [slot_w.addr.eq(jt + t), slot_w.data.eq(Cat(s, valid)),
                     slot_w.en.eq(run), stok_w.addr.eq(s), stok_w.data.eq(t),
                     stok_w.en.eq(run & valid)]
        with m.If(st == _S.PLACE0):
            m.d.sync += [t.eq(0), j.eq(0), jt.eq(0), any_kept.eq(0), st.eq(_S.PLACE)]
        with m.If(run):
            m.d.sync += [t.eq(t_next), j.eq(j_next), jt.eq(Mux(last_j, 0, jt + T))]
            with m.If(valid):
                m.d.sync += kept.eq(kept + 1)
                for i in range(EM):
                    with m.If(e == i):
                        m.d.sync += fill[i].eq(fill[i] + 1)
            with m.Else():
                m.d.sync += dropped.eq(dropped + 1)
            m.d.sync += any_kept.eq(Mux(last_j, 0, any_kept | valid))
            with m.If(last_j & ~any_kept & ~valid):
                m.d.sync += dtok.eq(dtok + 1)
            with m.If(last_j & (t + 1 == T)):
                m.d.sync += st.eq(_S.WSTART)

    # --- writes: slot table, slot_token list, counters ------------------------------------
    def _write(self, m, st, d, err, slot_r, stok_r, counts, offs, dropped, dtok, kept,
               waiting, bite, finish, lw, EM, sbits):
        ax = self.m_axi
        cfg = self.cfg
        W = 1 << lw
        lanes = W // 4
        chunk = write_chunk(cfg)
        T, E, k = d.tokens, d.experts, d.top_k
        table = Signal(2)               # 0 slot, 1 slot_token, 2 counts, 3 done
        addr = Signal(32)               # byte address of the next word
        left = Signal(24)               # words left in the table
        idx = Signal(24)                # index of the next word in the table
        burst_left = Signal(24)         # words left in the burst
        beat = Signal(8 * W)
        strb = Signal(W)
        last_beat = Signal()
        # the next table's base and length
        bases = [d.slot_addr, d.slot_token_addr, d.counts_addr]
        lens = [T * k, kept, 2 * E + 3]
        with m.If(st == _S.PLACE0):
            m.d.sync += [table.eq(0), addr.eq(d.slot_addr), left.eq(T * k), idx.eq(0)]
        # the word source: 1-cycle read latency, address = idx (+1 while capturing)
        cap_now = (st == _S.WCAP)
        rd = Signal(24)
        m.d.comb += rd.eq(idx + cap_now)
        m.d.comb += [slot_r.addr.eq(rd), stok_r.addr.eq(rd)]
        cw_idx = Signal(24)
        m.d.sync += cw_idx.eq(rd)
        cw = Signal(32)
        m.d.comb += cw.eq(Mux(cw_idx < E, select(cw_idx, counts),
                          Mux(cw_idx < 2 * E, select(cw_idx - E, offs),
                          Mux(cw_idx == 2 * E, dropped,
                          Mux(cw_idx == 2 * E + 1, dtok, kept)))))
        slot_word = Mux(slot_r.data[sbits], slot_r.data[:sbits], d.drop_slot)
        word = Signal(32)
        m.d.comb += word.eq(Mux(table == 0, slot_word, Mux(table == 1, stok_r.data, cw)))
        # burst of the current position
        room = Signal(24)
        m.d.comb += room.eq((chunk - (addr & (chunk - 1))) >> 2)
        nw = Signal(24)
        m.d.comb += nw.eq(Mux(left < room, left, room))
        beats = Signal(24)
        m.d.comb += beats.eq((addr[:lw] + (nw << 2) + W - 1) >> lw)
        m.d.comb += [ax.awvalid.eq(st == _S.WAW), ax.wvalid.eq(st == _S.WW),
                     ax.wdata.eq(beat), ax.wstrb.eq(strb), ax.wlast.eq(last_beat),
                     ax.bready.eq(st == _S.WB)]
        lane = addr[2:lw] if lanes > 1 else Const(0, 1)
        with m.If(st == _S.WSTART):
            with m.If(table == 3):
                m.d.sync += st.eq(_S.DONE)
            with m.Elif(left == 0):
                nxt = table + 1
                m.d.sync += [table.eq(nxt), idx.eq(0),
                             addr.eq(select(nxt, bases + [0])),
                             left.eq(select(nxt, lens + [0]))]
            with m.Else():
                m.d.sync += [ax.awaddr.eq(Cat(Const(0, lw), addr[lw:])),
                             ax.awlen.eq(beats - 1), burst_left.eq(nw),
                             beat.eq(0), strb.eq(0), st.eq(_S.WAW)]
        with m.If((st == _S.WAW) | (st == _S.WW) | (st == _S.WB)):
            m.d.comb += waiting.eq(1)
            with m.If(bite):
                m.d.sync += finish(DispatchError.TIMEOUT)
        with m.If((st == _S.WAW) & ax.awready & ~bite):
            m.d.sync += st.eq(_S.WCAP)
        with m.If(cap_now):
            for i in range(lanes):
                with m.If(lane == i):
                    m.d.sync += [beat.word_select(i, 32).eq(word),
                                 strb.word_select(i, 4).eq(0xF)]
            m.d.sync += [idx.eq(idx + 1), addr.eq(addr + 4), left.eq(left - 1),
                         burst_left.eq(burst_left - 1)]
            end_burst = burst_left == 1
            with m.If((lane == lanes - 1) | end_burst):
                m.d.sync += [st.eq(_S.WW), last_beat.eq(end_burst)]
        with m.If((st == _S.WW) & ax.wready & ~bite):
            m.d.sync += [beat.eq(0), strb.eq(0),
                         st.eq(Mux(last_beat, _S.WB, _S.WCAP))]
        with m.If((st == _S.WB) & ax.bvalid & ~bite):
            with m.If(ax.bresp != int(Resp.OKAY)):
                m.d.sync += finish(DispatchError.AXI)
            with m.Else():
                m.d.sync += st.eq(_S.WSTART)


def _or(values, width):
    out = Const(0, width)
    for v in values:
        out = out | v
    return out
