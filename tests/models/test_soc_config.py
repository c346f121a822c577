"""SocConfig and the chip's cross-section rules: every error message, every preset."""
import dataclasses

import pytest

from models.config import (PRESETS, ConfigError, DmaConfig, HbmConfig, JalapenoConfig,
                           NocConfig, SocConfig, get_preset)


@pytest.mark.parametrize("kw, msg", [
    ({"tiles": 0}, "SocConfig.tiles must be in [1, 32], got 0"),
    ({"tiles": 33}, "SocConfig.tiles must be in [1, 32], got 33"),
    ({"tiles": 2.0}, "SocConfig.tiles must be an int, got 2.0"),
    ({"tile_nodes": 5}, "SocConfig.tile_nodes must be a tuple of node numbers, got 5"),
    ({"tile_nodes": (5, 6, 9)}, "SocConfig.tile_nodes must have 4 entries (tiles), got 3"),
    ({"tile_nodes": (5, 6, 9, -1)}, "SocConfig.tile_nodes[3] must be in [0, 255], got -1"),
    ({"tile_nodes": (5, 6, 9, "a")}, "SocConfig.tile_nodes[3] must be an int, got 'a'"),
    ({"hbm_nodes": ()}, "SocConfig.hbm_nodes must be a non-empty tuple of node numbers, got ()"),
    ({"hbm_nodes": (4, 256)}, "SocConfig.hbm_nodes[1] must be in [0, 255], got 256"),
    ({"ctrl_node": 300}, "SocConfig.ctrl_node must be in [0, 255], got 300"),
    ({"fetch_depth": 0}, "SocConfig.fetch_depth must be in [1, 64], got 0"),
    ({"load_depth": 0}, "SocConfig.load_depth must be in [1, 256], got 0"),
    ({"compute_depth": 257}, "SocConfig.compute_depth must be in [1, 256], got 257"),
    ({"store_depth": True}, "SocConfig.store_depth must be an int, got True"),
    ({"token_bits": 1}, "SocConfig.token_bits must be in [2, 16], got 1"),
    ({"watchdog_cycles": 15}, "SocConfig.watchdog_cycles must be in [16, 4294967295], got 15"),
    ({"ctrl_node": 5}, "SocConfig: node 5 holds both tile 0 and control"),
    ({"hbm_nodes": (4, 7, 8, 6)}, "SocConfig: node 6 holds both tile 1 and hbm channel 3"),
    ({"tile_nodes": (5, 6, 9, 5)}, "SocConfig: node 5 holds both tile 0 and tile 3"),
])
def test_soc_config_errors(kw, msg):
    with pytest.raises(ConfigError) as e:
        SocConfig(**kw)
    assert str(e.value) == msg


def test_soc_section_type_checked():
    with pytest.raises(ConfigError) as e:
        JalapenoConfig(soc=4)
    assert str(e.value) == "JalapenoConfig.soc must be a SocConfig, got 4"


def test_soc_lists_become_tuples_and_json_round_trips():
    soc = SocConfig(tiles=2, tile_nodes=[1, 2], hbm_nodes=[3], ctrl_node=0)
    assert soc.tile_nodes == (1, 2) and soc.hbm_nodes == (3,)
    assert hash(soc) == hash(SocConfig(tiles=2, tile_nodes=(1, 2), hbm_nodes=(3,)))
    for cfg in PRESETS.values():
        back = JalapenoConfig.from_json(cfg.to_json())
        assert back == cfg and isinstance(back.soc.tile_nodes, tuple)


def test_soc_derived_values():
    soc = SocConfig(token_bits=3, load_depth=2, compute_depth=5, store_depth=7)
    assert soc.token_max == 7
    assert soc.queue_depths == (2, 5, 7)
    assert soc.units()[-1] == ("control", 0)
    assert [u for u, _ in soc.units()][:5] == ["tile 0", "tile 1", "tile 2", "tile 3",
                                                "hbm channel 0"]


# --- presets ----------------------------------------------------------------------------
def test_presets_are_chips():
    tiny, default, jal = (get_preset(n) for n in ("tiny", "default", "jalapeno"))
    assert all(c.chip_errors() == [] for c in (tiny, default, jal))
    assert (tiny.soc.tiles, tiny.systolic.rows, tiny.systolic.cols, tiny.hbm.channels) == \
        (2, 4, 4, 2)
    assert default.soc.tiles >= 4 and (default.systolic.rows, default.systolic.cols) == (16, 16)
    assert (jal.soc.tiles, jal.systolic.rows, jal.systolic.cols, jal.hbm.channels) == \
        (16, 64, 64, 16)
    # a 512x512x512 INT8 GEMM's operands and INT32 result fit the default HBM
    assert 512 * 512 * (1 + 1 + 4) < default.hbm.total_bytes
    for cfg in (tiny, default, jal):
        nodes = [n for _, n in cfg.soc.units()]
        assert len(set(nodes)) == len(nodes) and max(nodes) < cfg.noc.nodes
        assert len(cfg.soc.hbm_nodes) == cfg.hbm.channels


# --- cross-section rules ----------------------------------------------------------------
def _tiny(**sections):
    base = get_preset("tiny")
    kw = {name: dataclasses.replace(getattr(base, name), **vals)
          for name, vals in sections.items()}
    return dataclasses.replace(base, **kw)


@pytest.mark.parametrize("sections, msg", [
    ({"soc": {"hbm_nodes": (3,)}},
     "soc.hbm_nodes has 1 entries, hbm.channels is 2: one mesh node per HBM channel"),
    ({"soc": {"tile_nodes": (1, 9)}},
     "soc places tile 1 on node 9, the 3x3 mesh has nodes 0..8"),
    ({"soc": {"ctrl_node": 12}},
     "soc places control on node 12, the 3x3 mesh has nodes 0..8"),
    ({"noc": {"data_bits": 32}},
     "noc.data_bits (32) must equal 8 * hbm.data_bytes (64): one flit carries one memory beat"),
    ({"noc": {"addr_bits": 14}},
     "noc.addr_bits (14) cannot address hbm.total_bytes (32768)"),
    ({"noc": {"len_bits": 3}},
     "dma.max_burst_beats (16) does not fit a packet's len field (noc.len_bits 3: at most 8)"),
    ({"noc": {"id_bits": 3}}, "noc.id_bits (3) must be >= hbm.id_bits (4)"),
    ({"hbm": {"interleave_bytes": 64}},
     "hbm.interleave_bytes (64) must be >= the DMA burst span (128 bytes): a burst must "
     "stay in one channel"),
    ({"dma": {"sram_bytes": 8192}},
     "dma.sram_bytes (8192) must cover the accumulator SRAM (16384 bytes)"),
])
def test_chip_rule_errors(sections, msg):
    cfg = _tiny(**sections)          # a block-level variant may break chip rules ...
    assert cfg.chip_errors() == [msg]
    with pytest.raises(ConfigError) as e:       # ... but cannot be built as a chip
        cfg.check_chip()
    assert str(e.value) == f"JalapenoConfig 'tiny' is not a valid chip: {msg}"


def test_chip_rules_name_every_broken_rule():
    cfg = _tiny(noc={"data_bits": 128}, dma={"sram_bytes": 2048})
    errs = cfg.chip_errors()
    assert errs[0].startswith("noc.data_bits (128) must equal 8 * hbm.data_bytes (64)")
    assert [e.split(" SRAM")[0].rsplit(" ", 1)[1] for e in errs[1:]] == \
        ["activation", "weight", "accumulator"]
    with pytest.raises(ConfigError, match="activation.*; .*weight.*; .*accumulator"):
        cfg.check_chip()


def test_block_variants_of_presets_still_construct():
    """What the NoC fabric test and bench build: not chips, but valid block configs."""
    tiny = get_preset("tiny")
    two = dataclasses.replace(tiny, noc=dataclasses.replace(tiny.noc, cols=2, rows=2))
    assert "soc places tile 1 on node 7, the 2x2 mesh has nodes 0..3" in two.chip_errors()
    assert JalapenoConfig(noc=NocConfig(cols=5, rows=2)).noc.nodes == 10
    assert get_preset("default").check_chip() is get_preset("default")
    # sections are independent objects: a DMA/HBM variant of a chip can still be a chip
    cfg = dataclasses.replace(tiny, dma=DmaConfig(max_burst_beats=8, sram_bytes=16384),
                              hbm=dataclasses.replace(tiny.hbm, interleave_bytes=64))
    assert cfg.chip_errors() == []
    assert isinstance(cfg.hbm, HbmConfig)
