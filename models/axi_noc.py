"""Golden model of the AXI4 <-> NoC bridges (rtl/soc/axi_noc.py, docs/soc_memory.md).

AXI4 is carried over the mesh as the NoC's memory messages (:mod:`models.noc`): an AR
becomes a READ header, an AW + its W beats a WRITE header + ``len + 1`` data beats (the
strobes ride in the flit's strobe lanes), R and B come back as READ_RESP / WRITE_RESP with
the AXI ``Resp`` in the header's status bits. Every width comes from one
:class:`models.config.JalapenoConfig`: the AXI data bus is ``hbm.data_bytes`` (=
``noc.data_bits / 8`` on a chip), the AXI ID ``hbm.id_bits``, the message ``len`` the AXI
``len``.

:func:`bridge_route` is the initiator bridge's decision for one burst, in this order:

1. **DECERR, answered locally** (never sent, so nobody waits): the burst (``beats`` of
   ``2**size`` bytes from the aligned start, as :func:`models.hbm.burst_verdict` spans it)
   crosses an interleave granule, ends at or past ``hbm.total_bytes`` (no target owns it),
   or its channel's node (``soc.hbm_nodes[channel]``) is missing or outside the mesh.
2. **SLVERR, answered locally**: what a memory message cannot carry: ``size`` other than
   the full bus, a burst type other than INCR, more than :func:`max_beats` beats.
3. Otherwise the burst is sent to ``node``; the target bridge gives the channel the
   local address :func:`models.hbm.route` computes, and answers what the channel answers.

Numpy/stdlib only; reads the same config as the RTL.
"""
from __future__ import annotations

from dataclasses import dataclass

from models.axi import Burst, Resp
from models.config import JalapenoConfig
from models.hbm import route

__all__ = ["BridgeRoute", "bridge_route", "channel_node", "max_beats", "slots"]


def max_beats(cfg: JalapenoConfig) -> int:
    """Longest burst the bridge carries: ``dma.max_burst_beats`` (the DMA's bursts; the
    config checks that it fits the message ``len`` field) capped by ``2**noc.len_bits``.
    The initiator's read reorder buffer holds this many beats per slot."""
    return min(cfg.dma.max_burst_beats, 1 << cfg.noc.len_bits)


def slots(cfg: JalapenoConfig) -> int:
    """Bursts (reads, and separately writes) the initiator bridge keeps in flight: its
    reorder slots, tagged in the message ``id`` field: ``min(2**noc.id_bits,
    dma.max_outstanding)``."""
    return min(1 << cfg.noc.id_bits, cfg.dma.max_outstanding)


def channel_node(cfg: JalapenoConfig, channel: int) -> int | None:
    """Mesh node of HBM channel ``channel``, or None if the config places it nowhere or
    outside the mesh (requests to it are answered DECERR by the initiator)."""
    nodes = cfg.soc.hbm_nodes
    if not 0 <= channel < cfg.hbm.channels or channel >= len(nodes):
        return None
    n = nodes[channel]
    return n if 0 <= n < cfg.noc.nodes else None


@dataclass(frozen=True)
class BridgeRoute:
    """The initiator bridge's decision for one burst.

    ``resp`` is OKAY for a burst that is sent (to ``node``, channel ``channel``, local
    address ``local``), DECERR / SLVERR for one answered locally (``node`` None)."""

    resp: Resp
    channel: int | None = None
    node: int | None = None
    local: int | None = None


def bridge_route(cfg: JalapenoConfig, addr: int, beats: int, size: int | None = None,
                 burst: int = Burst.INCR) -> BridgeRoute:
    """Where the initiator bridge sends a burst at ``addr`` of ``beats`` beats (module
    docstring for the rules and their order). ``size`` defaults to the full bus."""
    h = cfg.hbm
    lw = h.data_bytes.bit_length() - 1
    size = lw if size is None else size
    start = addr & ~((1 << size) - 1)
    span = (1 << size) if burst == Burst.FIXED else beats << size
    end = start + span - 1
    g = h.interleave_bytes
    if start // g != end // g or end >= h.total_bytes:
        return BridgeRoute(Resp.DECERR)
    ch, local = route(h, addr)
    node = channel_node(cfg, ch)
    if node is None:
        return BridgeRoute(Resp.DECERR, ch)
    if size != lw or burst != Burst.INCR or not 1 <= beats <= max_beats(cfg):
        return BridgeRoute(Resp.SLVERR, ch)
    return BridgeRoute(Resp.OKAY, ch, node, local)
