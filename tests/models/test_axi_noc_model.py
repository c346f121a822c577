"""models.axi_noc (the AXI4 <-> NoC bridges' mapping) against models.hbm.route, checked
independently: a brute-force owner map of the HBM space built from models.hbm.unroute,
the config's node placement, and the DECERR / SLVERR rules case by case."""
import dataclasses
import random

import pytest

from models import axi_noc as bridge
from models.axi import Burst, Resp
from models.config import PRESETS, SocConfig, get_preset
from models.hbm import route, unroute


def _owner_map(cfg):
    """byte address -> (channel, local), from unroute over every channel's granules."""
    h = cfg.hbm
    g = h.interleave_bytes
    owner = {}
    for ch in range(h.channels):
        for local in range(0, h.channel_bytes, g):
            owner[unroute(h, ch, local)] = (ch, local)
    return owner


@pytest.mark.parametrize("preset", ["tiny", "default"])
def test_every_granule_goes_to_its_channel_node(preset):
    cfg = get_preset(preset)
    h, g = cfg.hbm, cfg.hbm.interleave_bytes
    owner = _owner_map(cfg)
    assert sorted(owner) == list(range(0, h.total_bytes, g)), "unroute is not a bijection"
    rng = random.Random(1)
    for base, (ch, local) in owner.items():
        off = rng.randrange(0, g, h.data_bytes)
        beats = rng.randint(1, min(bridge.max_beats(cfg), (g - off) // h.data_bytes))
        r = bridge.bridge_route(cfg, base + off, beats)
        assert r.resp == Resp.OKAY, (base, off, beats, r)
        assert r.channel == ch == route(h, base + off)[0]
        assert r.local == local + off == route(h, base + off)[1]
        assert r.node == cfg.soc.hbm_nodes[ch]
        assert 0 <= r.node < cfg.noc.nodes


def test_decerr_past_the_space_and_across_granules():
    cfg = get_preset("tiny")
    h, W, g = cfg.hbm, cfg.hbm.data_bytes, cfg.hbm.interleave_bytes
    for addr in (h.total_bytes, h.total_bytes + W, 1 << cfg.noc.addr_bits, (1 << 32) - W):
        assert bridge.bridge_route(cfg, addr, 1).resp == Resp.DECERR, hex(addr)
        assert bridge.bridge_route(cfg, addr, 1).node is None
    # the last beat of the space is fine, one more beat is not
    assert bridge.bridge_route(cfg, h.total_bytes - W, 1).resp == Resp.OKAY
    assert bridge.bridge_route(cfg, h.total_bytes - W, 2).resp == Resp.DECERR
    # a burst that would cross into the next granule (another channel)
    assert bridge.bridge_route(cfg, g - W, 2).resp == Resp.DECERR
    assert bridge.bridge_route(cfg, g - W, 1).resp == Resp.OKAY
    # an unaligned start counts from the aligned beat (models.hbm.burst_verdict's span)
    assert bridge.bridge_route(cfg, g - W + 3, 1).resp == Resp.OKAY


def test_decerr_for_a_channel_without_a_node():
    base = get_preset("tiny")
    # channel 1 placed outside the 3x3 mesh (not a chip: check_chip rejects it)
    cfg = dataclasses.replace(base, soc=dataclasses.replace(base.soc, hbm_nodes=(3, 9)))
    assert cfg.chip_errors()
    g = cfg.hbm.interleave_bytes
    assert bridge.channel_node(cfg, 1) is None and bridge.channel_node(cfg, 0) == 3
    assert bridge.bridge_route(cfg, g, 1) == bridge.BridgeRoute(Resp.DECERR, 1)
    assert bridge.bridge_route(cfg, 0, 1).resp == Resp.OKAY
    # fewer nodes than channels
    soc = SocConfig(tiles=2, tile_nodes=(1, 7), hbm_nodes=(3,), ctrl_node=0)
    cfg = dataclasses.replace(base, soc=soc)
    assert bridge.bridge_route(cfg, g, 1).resp == Resp.DECERR
    assert bridge.channel_node(cfg, 5) is None


def test_slverr_for_what_a_message_cannot_carry():
    cfg = get_preset("tiny")
    W = cfg.hbm.data_bytes
    lw = W.bit_length() - 1
    assert bridge.bridge_route(cfg, 0, 1, size=lw - 1).resp == Resp.SLVERR
    assert bridge.bridge_route(cfg, 0, 2, burst=Burst.FIXED).resp == Resp.SLVERR
    assert bridge.bridge_route(cfg, 0, 2, burst=Burst.WRAP).resp == Resp.SLVERR
    mb = bridge.max_beats(cfg)
    assert bridge.bridge_route(cfg, 0, mb).resp == Resp.OKAY
    assert bridge.bridge_route(cfg, 0, mb + 1).resp == Resp.SLVERR
    # DECERR wins over SLVERR (the stub's priority)
    assert bridge.bridge_route(cfg, cfg.hbm.total_bytes, 1, size=0).resp == Resp.DECERR


@pytest.mark.parametrize("preset", list(PRESETS))
def test_widths_come_from_one_config(preset):
    cfg = get_preset(preset)
    assert bridge.max_beats(cfg) == cfg.dma.max_burst_beats <= 1 << cfg.noc.len_bits
    assert bridge.slots(cfg) <= 1 << cfg.noc.id_bits
    assert bridge.slots(cfg) <= cfg.dma.max_outstanding
    assert cfg.noc.data_bits == 8 * cfg.hbm.data_bytes
    for ch in range(cfg.hbm.channels):
        assert bridge.channel_node(cfg, ch) == cfg.soc.hbm_nodes[ch]
