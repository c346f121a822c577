"""The per-tile load / compute / store queues of the command processor, their dependency
token counters, the barrier logic and the watchdog (docs/command_processor.md).

Semantics: ``models.chip.ChipModel`` (queue heads, tokens, barriers, errors), with the
token counter each flag uses read from ``models.chip.TOKEN_OF``.
"""
from __future__ import annotations

from amaranth import Cat, Module, Mux, ResetInserter, Signal
from amaranth.lib import data, enum, stream, wiring
from amaranth.lib.wiring import In, Out

from models.chip import TOKEN_OF
from models.isa import IsaError, Queue, Token
from rtl.lib.stream import Queue as Fifo
from rtl.soc.cmdproc_check import ERR_BITS, compute_cmd_layout, dma_cmd_layout, done_layout

__all__ = ["EntryKind", "entry_layout", "bar_bits", "inflight_limit", "TileDispatch"]

QUEUE_NAMES = {Queue.LOAD: "load", Queue.COMPUTE: "compute", Queue.STORE: "store"}


class EntryKind(enum.Enum, shape=2):
    WORK = 0        # DMA_LOAD / TENSOR / DMA_STORE: issued to the unit
    SYNC = 1        # token flags only
    MARK = 2        # a barrier's marker


def bar_bits(config) -> int:
    """Bits of a barrier id: unambiguous among all barriers that can be in flight."""
    soc = config.soc
    return (soc.tiles * max(soc.queue_depths) + 1).bit_length() + 1


def work_layout(q: Queue):
    return compute_cmd_layout() if q == Queue.COMPUTE else dma_cmd_layout()


def entry_layout(config, q: Queue) -> data.StructLayout:
    """One entry of queue ``q``: kind, token flags, the command's HBM address (errors),
    barrier id and mask (markers) and the unit's command."""
    return data.StructLayout({
        "kind": EntryKind, "wait_prev": 1, "wait_next": 1, "signal_prev": 1,
        "signal_next": 1, "addr": 32, "bar": bar_bits(config), "mask": config.soc.tiles,
        "work": work_layout(q),
    })


class _St(enum.Enum, shape=1):
    IDLE = 0
    ISSUE = 1           # the head's command is offered to the unit


def inflight_limit(config, q: Queue) -> int:
    """Commands of queue ``q`` handed to the unit and not yet completed, at most: the
    tensor core's own command queue (``tensor.cmd_depth``) for COMPUTE, so consecutive
    MATMULs overlap in the array's pipeline; one for LOAD and STORE (they share the
    tile's DMA engine)."""
    return config.tensor.cmd_depth if q == Queue.COMPUTE else 1


class TileDispatch(wiring.Component):
    """Queues, token counters, barriers and watchdog of every tile.

    Parameters
    ----------
    config : JalapenoConfig
        ``soc.tiles``, queue depths, ``token_bits``, ``watchdog_cycles``.

    Members
    -------
    i_push_load, i_push_compute, i_push_store : In(stream(entry_layout)).array(tiles)
        The dispatcher's pushes (``ready`` = room).
    o_load, o_store : Out(stream(dma_cmd_layout())).array(tiles)
    o_compute : Out(stream(compute_cmd_layout())).array(tiles)
        Commands to the tiles' units (:func:`inflight_limit` in flight per queue).
    i_load_done, i_compute_done, i_store_done : In(stream(done_layout())).array(tiles)
        Completions (always ready; one ignored when nothing is in flight).
    i_stop : In(1)
        An error was raised: run what is ready, then discard everything left.
    o_err_valid, o_err_code, o_err_detail, o_err_addr : Out
        A run-time error this cycle (DMA_FAULT, TENSOR, TOKEN_OVERFLOW, WATCHDOG); when
        several occur in one cycle the lowest (tile, queue) wins.
    o_retired : Out(8)
        Commands completed this cycle (a barrier counts once).
    o_empty : Out(1)
        Nothing queued or in flight anywhere.
    o_busy, o_stall, o_token_wait, o_tile_err : per-tile status and perf signals.
    """

    def __init__(self, config):
        self._config = config
        T = config.soc.tiles
        sig = {}
        for q in Queue:
            n = QUEUE_NAMES[q]
            sig[f"i_push_{n}"] = In(stream.Signature(entry_layout(config, q))).array(T)
            sig[f"o_{n}"] = Out(stream.Signature(work_layout(q))).array(T)
            sig[f"i_{n}_done"] = In(stream.Signature(done_layout())).array(T)
            sig[f"o_{n}_busy"] = Out(1).array(T)
            sig[f"o_{n}_stall"] = Out(1).array(T)
            sig[f"o_{n}_run"] = Out(1).array(T)
        sig |= {"i_stop": In(1), "o_err_valid": Out(1), "o_err_code": Out(ERR_BITS),
                "o_err_detail": Out(ERR_BITS), "o_err_addr": Out(32), "o_retired": Out(8),
                "o_empty": Out(1), "o_token_wait": Out(1).array(T), "o_tile_err": Out(1).array(T)}
        super().__init__(sig)

    def elaborate(self, platform):
        m = Module()
        cfg = self._config
        soc = cfg.soc
        T, tmax = soc.tiles, soc.token_max
        flush = Signal()
        cnt = [[Signal(soc.token_bits, name=f"tok{t}_{k.name}") for k in Token] for t in range(T)]
        inc = [[Signal(name=f"inc{t}_{k.name}") for k in Token] for t in range(T)]
        dec = [[Signal(name=f"dec{t}_{k.name}") for k in Token] for t in range(T)]
        heads = {}      # (t, q) -> namespace
        errs = []       # (valid, code, detail, addr) in priority order
        retire = []
        idle_all = []
        can_move = []   # a head could start now (after an error: what still runs)
        wd_max = soc.watchdog_cycles

        for t in range(T):
            for q in Queue:
                n = QUEUE_NAMES[q]
                fifo = Fifo(entry_layout(cfg, q), soc.queue_depths[q])
                m.submodules[f"q{t}_{n}"] = ResetInserter(flush)(fifo)
                wiring.connect(m, wiring.flipped(getattr(self, f"i_push_{n}")[t]), fifo.i)
                head = fifo.o.payload
                st = Signal(_St, name=f"st{t}_{n}", decoder=_St)   # named in make waves
                cur = Signal(entry_layout(cfg, q), name=f"cur{t}_{n}")
                out = getattr(self, f"o_{n}")[t]
                done = getattr(self, f"i_{n}_done")[t]
                tok = {f: TOKEN_OF.get((q, f)) for f in
                       ("wait_prev", "wait_next", "signal_prev", "signal_next")}
                # commands handed to the unit, oldest first (completions come in order)
                ifq = Fifo(entry_layout(cfg, q), inflight_limit(cfg, q))
                m.submodules[f"f{t}_{n}"] = ifq
                sig_v = Signal(name=f"sigv{t}_{n}")                # signal stage
                sig = Signal(entry_layout(cfg, q), name=f"sig{t}_{n}")
                quiet = Signal(name=f"quiet{t}_{n}")               # nothing in flight
                m.d.comb += quiet.eq((st == _St.IDLE) & ~ifq.o.valid & ~sig_v)

                def avail(flag, entry):
                    k = tok[flag]
                    return 1 if k is None else (~getattr(entry, flag) | (cnt[t][k] != 0))
                tokens_ok = Signal(name=f"tokok{t}_{n}")
                m.d.comb += tokens_ok.eq(avail("wait_prev", head) & avail("wait_next", head))
                is_mark = head.kind == EntryKind.MARK
                is_work = head.kind == EntryKind.WORK
                room = Signal(name=f"room{t}_{n}")
                m.d.comb += room.eq(ifq.level < inflight_limit(cfg, q))
                bar_ok = Signal(name=f"barok{t}_{n}")          # driven below
                waiting = Signal(name=f"wait{t}_{n}")
                go = Signal(name=f"go{t}_{n}")
                m.d.comb += [
                    # WORK issues while earlier commands run; a SYNC waits for them
                    go.eq((st == _St.IDLE) & fifo.o.valid & ~is_mark & tokens_ok &
                          Mux(is_work, room, quiet)),
                    waiting.eq(quiet & fifo.o.valid & Mux(is_mark, ~bar_ok, ~tokens_ok)),
                ]
                heads[t, q] = dict(fifo=fifo, st=st, is_mark=is_mark, bar_ok=bar_ok, head=head,
                                   go=go, quiet=quiet)
                idle_all.append(quiet & ~fifo.o.valid)
                can_move.append(~quiet | go | (fifo.o.valid & is_mark & bar_ok))

                # waits: take tokens when the head starts
                for f in ("wait_prev", "wait_next"):
                    if tok[f] is not None:
                        m.d.comb += dec[t][tok[f]].eq(go & getattr(head, f))
                with m.If(go & is_work):
                    m.d.sync += [cur.eq(head), st.eq(_St.ISSUE)]
                issued = out.valid & out.ready
                m.d.comb += [out.valid.eq(st == _St.ISSUE), out.payload.eq(cur.work),
                             done.ready.eq(1),
                             ifq.i.valid.eq(issued), ifq.i.payload.eq(cur)]
                with m.If(issued):
                    m.d.sync += st.eq(_St.IDLE)
                # a completion retires the oldest command in flight (none: ignored)
                fin = done.valid & ifq.o.valid
                fault = Signal(name=f"fault{t}_{n}")
                m.d.comb += [fault.eq(fin & (done.payload.err != 0)), ifq.o.ready.eq(fin)]
                errs.append((fault, IsaError.TENSOR if q == Queue.COMPUTE else IsaError.DMA_FAULT,
                             done.payload.err, ifq.o.payload.addr))
                # signal stage: a completed command (or a SYNC) signals the next cycle
                m.d.sync += sig_v.eq((fin & ~fault) | (go & ~is_work))
                with m.If(fin):
                    m.d.sync += sig.eq(ifq.o.payload)
                with m.Elif(go & ~is_work):
                    m.d.sync += sig.eq(head)

                # signals: both counters checked first (models.chip: prev before next)
                full = {}
                for f in ("signal_prev", "signal_next"):
                    k = tok[f]
                    full[f] = 0 if k is None else (getattr(sig, f) & (cnt[t][k] == tmax))
                ovf = Signal(name=f"ovf{t}_{n}")
                ok = Signal(name=f"ok{t}_{n}")
                m.d.comb += [ovf.eq(sig_v & (Cat(full["signal_prev"],
                                                 full["signal_next"]) != 0)),
                             ok.eq(sig_v & ~ovf)]
                kp, kn = tok["signal_prev"], tok["signal_next"]
                ovf_k = Mux(full["signal_prev"], int(kp) if kp is not None else 0,
                            int(kn) if kn is not None else 0)
                errs.append((ovf, IsaError.TOKEN_OVERFLOW, ovf_k, sig.addr))
                for f in ("signal_prev", "signal_next"):
                    if tok[f] is not None:
                        m.d.comb += inc[t][tok[f]].eq(ok & getattr(sig, f))
                retire.append(ok)

                # watchdog: a head that waits watchdog_cycles for a token or a barrier
                wd = Signal(range(wd_max + 1), name=f"wd{t}_{n}")
                m.d.sync += wd.eq(Mux(waiting & ~self.i_stop, wd + 1, 0))
                bite = Signal(name=f"bite{t}_{n}")
                m.d.comb += bite.eq(waiting & ~self.i_stop & (wd == wd_max - 1))
                errs.append((bite, IsaError.WATCHDOG, int(q), head.addr))

                m.d.comb += [
                    getattr(self, f"o_{n}_busy")[t].eq(~quiet | fifo.o.valid),
                    getattr(self, f"o_{n}_stall")[t].eq(waiting),
                    getattr(self, f"o_{n}_run")[t].eq((st == _St.ISSUE) | ifq.o.valid),
                ]
                heads[t, q]["waiting_tok"] = quiet & fifo.o.valid & ~is_mark & ~tokens_ok
                heads[t, q]["errs"] = errs[-3:]

            m.d.comb += self.o_token_wait[t].eq(Cat(*(heads[t, q]["waiting_tok"]
                                                      for q in Queue)).any())
            tile_err = Signal(name=f"tile_err{t}")
            with m.If(Cat(*(e[0] for q in Queue for e in heads[t, q]["errs"])).any()):
                m.d.sync += tile_err.eq(1)
            m.d.comb += self.o_tile_err[t].eq(tile_err)

            for k in Token:
                c = cnt[t][k]
                m.d.sync += c.eq(c + inc[t][k] - dec[t][k])

        # --- barriers: a tile's three heads are markers of the same barrier (the three
        # queues pop their markers together); it completes when every tile of its mask has
        # its heads at it and nothing of theirs is in flight
        mark3, bid, bmask = [], [], []
        for t in range(T):
            h = [heads[t, q] for q in Queue]
            m3 = Signal(name=f"mark3_{t}")
            m.d.comb += m3.eq(Cat(*(x["quiet"] & x["fifo"].o.valid & x["is_mark"]
                                    for x in h)).all())
            mark3.append(m3)
            bid.append(h[0]["head"].bar)
            bmask.append(h[0]["head"].mask)
        lead = []
        for t in range(T):
            done_t = Signal(name=f"bar_done{t}")
            parts = [~bmask[t][u] | (mark3[u] & (bid[u] == bid[t])) for u in range(T)]
            m.d.comb += done_t.eq(mark3[t] & Cat(*parts).all())
            for q in Queue:
                h = heads[t, q]
                m.d.comb += [h["bar_ok"].eq(done_t), h["fifo"].o.ready.eq(h["go"] | done_t)]
            lower = (bmask[t] & ((1 << t) - 1)) == 0 if t else 1
            lead.append(done_t & lower)

        # --- completions, errors, emptiness, discard after an error
        m.d.comb += self.o_retired.eq(sum(retire + lead))
        ev, ec, ed, ea = 0, 0, 0, 0
        for valid, code, detail, addr in reversed(errs):
            ev = Mux(valid, 1, ev)
            ec = Mux(valid, int(code), ec)
            ed = Mux(valid, detail, ed)
            ea = Mux(valid, addr, ea)
        m.d.comb += [self.o_err_valid.eq(ev), self.o_err_code.eq(ec), self.o_err_detail.eq(ed),
                     self.o_err_addr.eq(ea), self.o_empty.eq(Cat(*idle_all).all())]
        m.d.comb += flush.eq(self.i_stop & ~Cat(*can_move).any())
        return m
