"""Formal harness of :class:`rtl.noc.router.NocRouter` and its credit links (docs/formal.md).

The router sits at (1, 1) of a 3 x 3 mesh (every turn possible) with 2-flit buffers (the
tiny preset's NoC with ``data_bits`` 32 and ``buffer_depth`` 2, the smallest valid). The
environment:

* each upstream neighbour holds ``buffer_depth`` credits per VC, sends only with one and
  gets one back per credit pulse (a shadow counter per link and VC);
* each downstream neighbour returns a credit only for a flit it holds (a shadow
  occupancy per link and VC); ejection and injection streams are free;
* packets are well formed on every input and VC (HEAD BODY* TAIL or SINGLE), injected
  heads address a node of the mesh, and the low 3 payload bits of every flit name the
  input it entered by (so an output can tell packets of different inputs apart).

Checked: the router never sends without a credit and never returns more credits than it
took (shadow counters within ``[0, buffer_depth]``); its own credit counters equal the
free space downstream exactly; no input buffer overflows; flits are conserved (flits in
minus flits out equals the flits held in the buffers and output registers); every output
VC carries whole packets, one input's at a time (no interleaving); heads leave by their
XY route; nothing well formed is dropped.
"""
from __future__ import annotations

import dataclasses

from amaranth import Cat, Signal, Value
from amaranth.hdl import Fragment
from amaranth.lib import data

from models.config import PRESETS
from rtl.lib.harness_formal import AnyConst, AnySeq, FormalHarness, Proof, fifo_invariant, internal
from rtl.noc.flit import Port, flit_layout
from rtl.noc.router import NocRouter

__all__ = ["RouterHarness", "PROOFS", "formal_noc_config"]

ID_BITS = 3     # payload bits that name the input a flit entered by


def formal_noc_config():
    """The tiny preset's NoC at its smallest valid width and depth."""
    return dataclasses.replace(PRESETS["tiny"].noc, data_bits=32, buffer_depth=2)


def _name(port: int, v: int) -> str:
    return f"{Port(port).name}{v}"


class RouterHarness(FormalHarness):
    """One router at (1, 1) between shadow neighbours."""

    def __init__(self, parts=("credits", "packets", "conservation"), config=None,
                 shared: bool = False):
        super().__init__()
        self.parts = set(parts)
        self.cfg = config or formal_noc_config()
        self.shared = shared

    def build(self, m, p):
        cfg = self.cfg
        if self.shared:         # the mesh's one shared router: position on ports
            r = NocRouter(cfg)
            self.pos = (AnyConst(cfg.coord_bits), AnyConst(cfg.coord_bits))
            m.d.comb += [r.i_x.eq(self.pos[0]), r.i_y.eq(self.pos[1])]
            p.assume("env.position_in_mesh",
                     (self.pos[0] < cfg.cols) & (self.pos[1] < cfg.rows))
        else:
            r = NocRouter(cfg, 1, 1)
            self.pos = (1, 1)
        m.submodules.dut = frag = Fragment.get(r, None)
        self.r, self.frag, self.m, self.p = r, frag, m, p
        self.entered_by = {}        # (input port, VC): a flit entered there this cycle
        for port in range(4):
            self._upstream(port)
            self._downstream(port)
        for v in range(cfg.vcs):
            self._inject(v)
            self._eject(v)
        if "conservation" in self.parts:
            self._conservation()
            p.check("router.no_drop_of_good_packets", r.o_drop == 0)
        if "credits" in self.parts:
            p.check("router.no_input_overflow", ~r.o_overflow)
        D = cfg.buffer_depth
        for port in range(5):
            for v in range(cfg.vcs):
                fifo_invariant(p, frag, (f"in_{_name(port, v)}",), D, f"router.in_{_name(port, v)}")
        for v in range(cfg.vcs):
            fifo_invariant(p, frag, (f"eject{v}",), D, f"router.eject{v}")

    def _flit_in(self, flit, port: int, v: int, fire):
        """Well-formed packets whose payload names ``port``; returns nothing."""
        m, p = self.m, self.p
        kind = Value.cast(flit.kind)
        open_ = Signal(name=f"in_open_{_name(port, v)}")
        with m.If(fire):
            m.d.sync += open_.eq(Cat(kind[0] & ~kind[1], open_ & ~kind[1]).any())
        tag = _name(port, v)
        p.assume(f"env.{tag}.well_formed", ~fire | (open_ == ~kind[0]))
        p.assume(f"env.{tag}.payload_names_input", ~fire | (flit.payload[:ID_BITS] == port))

    def _drive_flit(self, flit):
        """Free kind, VC, destination and input id; the other payload bits and the
        source zero (the router never looks at them: fewer state bits to solve)."""
        cb = self.cfg.coord_bits
        self.m.d.comb += [flit.kind.eq(AnySeq(2)), flit.vc.eq(AnySeq(1)),
                          flit.dst_x.eq(AnySeq(cb)), flit.dst_y.eq(AnySeq(cb)),
                          flit.src_x.eq(0), flit.src_y.eq(0), flit.payload.eq(AnySeq(ID_BITS))]

    def _upstream(self, port: int):
        """Link ``port`` in: a neighbour that holds credits."""
        m, p, cfg = self.m, self.p, self.cfg
        link = self.r.i_link[port]
        m.d.comb += link.valid.eq(AnySeq(1))
        self._drive_flit(link.flit)
        for v in range(cfg.vcs):
            send = link.valid & (link.flit.vc == v)
            cred = Signal(range(cfg.buffer_depth + 2), init=cfg.buffer_depth,
                          name=f"up_credit_{_name(port, v)}")
            m.d.sync += cred.eq(cred - send + link.credit[v])
            p.assume(f"env.{_name(port, v)}.sends_with_credit", ~send | (cred != 0))
            if "credits" in self.parts:
                p.check(f"credit.in_{_name(port, v)}_returned_le_taken", cred <= cfg.buffer_depth)
            self._flit_in(link.flit, port, v, send)
            self.entered_by[port, v] = send

    def _downstream(self, port: int):
        """Link ``port`` out: a neighbour with ``buffer_depth`` slots per VC."""
        m, p, cfg = self.m, self.p, self.cfg
        link = self.r.o_link[port]
        credit = AnySeq(cfg.vcs)
        m.d.comb += link.credit.eq(credit)
        for v in range(cfg.vcs):
            got = link.valid & (link.flit.vc == v)
            occ = Signal(range(cfg.buffer_depth + 2), name=f"down_occ_{_name(port, v)}")
            m.d.sync += occ.eq(occ + got - credit[v])
            p.assume(f"env.{_name(port, v)}.credit_only_for_held_flit", ~credit[v] | (occ != 0))
            if "credits" in self.parts:
                p.check(f"credit.out_{_name(port, v)}_never_overflows", occ <= cfg.buffer_depth)
                self._credit_exact(port, v, occ)
            if "packets" in self.parts:
                self._flit_out(link.flit, port, v, got)

    def _credit_exact(self, port: int, v: int, downstream):
        """The router's credit counter == free slots downstream (a neighbour, or the
        ejection queue of the local port), counting the flit in its output register."""
        cfg, frag = self.cfg, self.frag
        credit = internal(frag, f"credit_{_name(port, v)}")
        name = Port(port).name
        ov, of = internal(frag, f"out_valid_{name}"), internal(frag, f"out_flit_{name}")
        in_reg = ov & (data.View(flit_layout(cfg), of).vc == v)
        self.p.check(f"credit.counter_{_name(port, v)}_exact",
                     credit + in_reg + downstream == cfg.buffer_depth)

    def _flit_out(self, flit, port: int, v: int, fire):
        """Whole packets of one input at a time; heads by their XY route."""
        m, p = self.m, self.p
        kind = Value.cast(flit.kind)
        open_ = Signal(name=f"out_open_{_name(port, v)}")
        owner = Signal(ID_BITS, name=f"out_owner_{_name(port, v)}")
        with m.If(fire):
            m.d.sync += open_.eq(Cat(kind[0] & ~kind[1], open_ & ~kind[1]).any())
            with m.If(kind[0]):
                m.d.sync += owner.eq(flit.payload[:ID_BITS])
        tag = _name(port, v)
        p.check(f"router.{tag}.whole_packets", ~fire | (open_ == ~kind[0]))
        p.check(f"router.{tag}.no_interleaving",
                ~(fire & open_) | (flit.payload[:ID_BITS] == owner))
        x, y = flit.dst_x, flit.dst_y
        px, py = self.pos
        route = {Port.E: x > px, Port.W: x < px, Port.S: (x == px) & (y > py),
                 Port.N: (x == px) & (y < py), Port.L: (x == px) & (y == py)}[Port(port)]
        p.check(f"router.{tag}.xy_route", ~(fire & kind[0]) | route)
        if (port, v) in ((Port.E, 0), (Port.L, 1)):
            p.cover(f"router.cover.{tag}.packet_leaves", fire & open_ & kind[1])

    def _inject(self, v: int):
        m, p, cfg = self.m, self.p, self.cfg
        inj = self.r.i_inject[v]
        m.d.comb += inj.valid.eq(AnySeq(1))
        self._drive_flit(inj.payload)
        fire = inj.valid & inj.ready
        self._flit_in(inj.payload, Port.L, v, fire)
        head = Value.cast(inj.payload.kind)[0]
        p.assume(f"env.L{v}.heads_address_the_mesh",
                 ~(fire & head) | ((inj.payload.dst_x < cfg.cols) & (inj.payload.dst_y < cfg.rows)))
        self.entered_by[Port.L, v] = fire

    def _eject(self, v: int):
        m = self.m
        ej = self.r.o_eject[v]
        m.d.comb += ej.ready.eq(AnySeq(1))
        fire = ej.valid & ej.ready
        if "credits" in self.parts:
            self._credit_exact(Port.L, v, internal(self.frag, "level", (f"eject{v}", "fifo")))
        if "packets" in self.parts:
            self._flit_out(ej.payload, Port.L, v, fire)

    def _conservation(self):
        """Per input port and VC: flits that entered there minus flits that left the
        router (by a link, or from the local output register into ejection) equals the
        flits of that input still held: in its FIFO or in an output register. The input
        of a flit is read from its payload (the environment names it), so a flit lost,
        duplicated or delivered twice shows up in its input's count."""
        m, p, cfg, frag = self.m, self.p, self.cfg, self.frag
        fl = flit_layout(cfg)
        regs = [(internal(frag, f"out_valid_{Port(o).name}"),
                 data.View(fl, internal(frag, f"out_flit_{Port(o).name}"))) for o in range(5)]
        for (port, v), entered in self.entered_by.items():
            tag = _name(port, v)
            mine = [ov & (of.vc == v) & (of.payload[:ID_BITS] == port) for ov, of in regs]
            count = Signal(range(cfg.buffer_depth + 7), name=f"inside_{tag}")
            m.d.sync += count.eq(count + entered - sum(mine))   # every register empties
            level = internal(frag, "level", (f"in_{tag}", "fifo"))
            p.check(f"router.{tag}.flits_conserved", count == level + sum(mine))


BLOCK = "rtl/noc/router.py::NocRouter + rtl/noc/flit.py credit link"
WHY = ("bounded: a flit takes 3 cycles from a link to the output register, so {d} steps "
       "cover a credit round trip on every output and VC and a whole 2-flit buffer "
       "forwarded; k-induction does not close because an induction trace may start with "
       "flits in a FIFO memory whose stored VC differs from the FIFO's VC (unreachable, "
       "but memory contents are invisible to the harness)")
PROOFS = [
    Proof("router_credits", BLOCK, "NoC router: credit counters",
          lambda: RouterHarness(["credits"]), "bmc", 12, why=WHY.format(d=12)),
    Proof("router_conservation", BLOCK, "NoC router: flits conserved",
          lambda: RouterHarness(["conservation"]), "bmc", 10, why=WHY.format(d=10)),
    Proof("router_packets", BLOCK, "NoC router: whole packets, no interleaving, XY",
          lambda: RouterHarness(["packets"]), "bmc", 10, why=WHY.format(d=10)),
    Proof("router_shared_credits", BLOCK, "NoC router, position on ports (the mesh's "
          "shared module), any position: credit counters",
          lambda: RouterHarness(["credits"], shared=True), "bmc", 10, why=WHY.format(d=10)),
    Proof("router_shared_packets", BLOCK, "NoC router, position on ports, any position: "
          "whole packets, no interleaving, XY",
          lambda: RouterHarness(["packets"], shared=True), "bmc", 8, why=WHY.format(d=8)),
    Proof("router_shared_cover", BLOCK, "NoC router, position on ports: the bounded runs "
          "are not vacuous", lambda: RouterHarness(["packets"], shared=True), "cover", 8,
          why="a 2-flit packet leaves by a link (VC 0) and by ejection (VC 1)"),
    Proof("router_cover", BLOCK, "NoC router: the bounded runs are not vacuous",
          lambda: RouterHarness(["packets"]), "cover", 10,
          why="a 2-flit packet leaves by a link (VC 0) and by ejection (VC 1)"),
]
