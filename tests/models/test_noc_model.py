"""NocConfig validation and the NoC analytical models, checked against brute force."""
import gc
import itertools
import re

import pytest

from models.config import ConfigError, JalapenoConfig, NocConfig, get_preset
from models.noc import (PATTERNS, average_zero_load_latency, bound_4_over_k, channel_loads,
                        hops, hotspot_bound, line_bound, pattern_bound, traffic_matrix,
                        uniform_bound, xy_route, zero_load_latency)


@pytest.mark.parametrize("kw, msg", [
    ({"cols": 0}, "NocConfig.cols must be in [1, 16], got 0"),
    ({"rows": 17}, "NocConfig.rows must be in [1, 16], got 17"),
    ({"buffer_depth": 1}, "NocConfig.buffer_depth must be in [2, 32], got 1"),
    ({"data_bits": 16}, "NocConfig.data_bits must be in [32, 512], got 16"),
    ({"cols": 2.0}, "NocConfig.cols must be an int, got 2.0"),
    ({"data_bits": 48}, "NocConfig.data_bits must hold a request header of 50 bits "
                        "(op 2 + addr_bits + len_bits + id_bits), got 48"),
])
def test_noc_config_errors(kw, msg):
    with pytest.raises(ConfigError) as e:
        NocConfig(**kw)
    assert str(e.value) == msg


def test_noc_section_in_presets_and_json():
    assert get_preset("tiny").noc.nodes == 9
    assert get_preset("default").noc.nodes == 16
    assert get_preset("jalapeno").noc.nodes == 64
    with pytest.raises(ConfigError, match="JalapenoConfig.noc must be a NocConfig"):
        JalapenoConfig(noc=(4, 4))
    cfg = JalapenoConfig(noc=NocConfig(cols=5, rows=2))
    assert JalapenoConfig.from_json(cfg.to_json()) == cfg


@pytest.mark.parametrize("cols, rows", [(1, 1), (2, 2), (3, 3), (4, 4), (5, 2), (8, 8)])
def test_coord_bits_can_name_a_missing_node(cols, rows):
    cfg = NocConfig(cols=cols, rows=rows)
    assert (1 << cfg.coord_bits) > max(cols, rows)


def _bfs_distance(cfg, s, d):
    """Shortest path in the mesh graph, by breadth-first search."""
    frontier, seen, dist = {s}, {s}, 0
    while d not in frontier:
        nxt = set()
        for n in frontier:
            x, y = n % cfg.cols, n // cfg.cols
            for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                if 0 <= x + dx < cfg.cols and 0 <= y + dy < cfg.rows:
                    nxt.add((y + dy) * cfg.cols + x + dx)
        frontier = nxt - seen
        seen |= nxt
        dist += 1
    return dist


@pytest.mark.parametrize("cols, rows", [(3, 3), (4, 2), (4, 4)])
def test_xy_route_is_minimal_x_then_y(cols, rows):
    cfg = NocConfig(cols=cols, rows=rows)
    for s, d in itertools.product(range(cfg.nodes), repeat=2):
        path = xy_route(cfg, s, d)
        assert path[0] == s and path[-1] == d
        assert len(path) - 1 == hops(cfg, s, d) == _bfs_distance(cfg, s, d)
        ys = [n // cols for n in path]
        turned = False
        for a, b in zip(path, path[1:]):       # once the route moves in Y it never moves in X
            if a // cols != b // cols:
                turned = True
            else:
                assert not turned, f"{s}->{d}: X move after a Y move in {path}"
        assert ys[-1] == d // cols


def test_zero_load_latency_formula():
    cfg = NocConfig()
    assert zero_load_latency(cfg, 0, 1) == 3
    assert zero_load_latency(cfg, 6, 1) == 15
    assert zero_load_latency(cfg, 2, 4) == 2 * 2 + 3 + 3
    assert all(zero_load_latency(cfg, h + 1) - zero_load_latency(cfg, h) == 2 for h in range(10))
    with pytest.raises(ValueError):
        zero_load_latency(cfg, -1)
    # average over uniform pairs: mean Manhattan distance of a k x k mesh is 2(k^2-1)/(3k)
    k = 4
    avg = average_zero_load_latency(NocConfig(cols=k, rows=k))
    assert avg == pytest.approx(2 * 2 * (k * k - 1) / (3 * k) + 3)


@pytest.mark.parametrize("k", [2, 3, 4, 5, 6, 8])
def test_uniform_bound_matches_brute_force_channel_load(k):
    """Uniform random (self included) at 1 flit/node/cycle: the busiest link carries
    1/bound flits per cycle, so the bound is 1 / max load (capped at 1 by the ports)."""
    cfg = NocConfig(cols=k, rows=k)
    n = cfg.nodes
    load = channel_loads(cfg, [[1 / n] * n for _ in range(n)])
    assert min(1.0, 1 / max(load.values())) == pytest.approx(uniform_bound(cfg))
    if k % 2 == 0:
        assert line_bound(k) == pytest.approx(bound_4_over_k(k))


def test_hotspot_bound_below_uniform():
    cfg = NocConfig(cols=4, rows=4)
    assert hotspot_bound(cfg, 0.0) == pytest.approx(uniform_bound(cfg))
    assert hotspot_bound(cfg, 0.25) == pytest.approx(1 / (16 * 0.25 + 0.75))


@pytest.mark.parametrize("cols, rows", [(3, 3), (4, 4), (5, 2), (8, 8)])
def test_traffic_matrices_are_distributions(cols, rows):
    cfg = NocConfig(cols=cols, rows=rows)
    for pattern in PATTERNS:
        t = traffic_matrix(cfg, pattern)
        assert all(sum(row) == pytest.approx(1.0) for row in t), pattern
    with pytest.raises(ValueError, match="unknown traffic pattern 'tornado'"):
        traffic_matrix(cfg, "tornado")


@pytest.mark.parametrize("k", [3, 4, 5, 8])
def test_pattern_bounds(k):
    """Uniform = the 4/k bound; hotspot = the hot node's ejection port (these sizes);
    transpose on a k x k mesh: the row link next to the diagonal carries k - 1 flows;
    neighbour: every link carries one flow, so only the ports limit it."""
    cfg = NocConfig(cols=k, rows=k)
    assert pattern_bound(cfg, "uniform") == pytest.approx(uniform_bound(cfg))
    assert pattern_bound(cfg, "bursty") == pytest.approx(uniform_bound(cfg))
    assert pattern_bound(cfg, "hotspot", 0.2) == pytest.approx(hotspot_bound(cfg, 0.2))
    assert pattern_bound(cfg, "transpose") == pytest.approx(1 / (k - 1))
    assert pattern_bound(cfg, "neighbour") == 1.0


# these build components only to read their signatures or Verilog
_unused_ok = pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")


@_unused_ok
def test_router_position_validation():
    """Router parameters (pure Python, no simulation): a position inside the mesh, or no
    position at all (position on ports, for the shared-module mesh)."""
    from rtl.noc.router import NocRouter
    cfg = NocConfig(cols=3, rows=2)
    with pytest.raises(ValueError, match=r"router position \(3, 0\) is outside the 3 x 2 mesh"):
        NocRouter(cfg, 3, 0)
    with pytest.raises(ValueError, match=r"needs both x and y or neither, got \(1, None\)"):
        NocRouter(cfg, 1, None)
    with pytest.raises(TypeError, match="NocRouter needs a NocConfig"):
        NocRouter(get_preset("tiny"), 0, 0)
    assert "i_x" in NocRouter(cfg).signature.members
    assert "i_x" not in NocRouter(cfg, 0, 0).signature.members
    gc.collect()        # the unused-elaboratable warnings fire here, under the filter


@_unused_ok
def test_shared_mesh_emits_one_router_module():
    """NocMesh(shared=True) through the Verilog writer: one router module (named by the
    config's hash), instantiated at every position; the flat mesh has none."""
    from rtl.lib.shared import module_name
    from rtl.lib.verilog import convert
    from rtl.noc.mesh import NocMesh
    from rtl.noc.router import NocRouter
    cfg = NocConfig(cols=3, rows=2, data_bits=64)
    router = module_name(NocRouter(cfg), cfg)
    assert router.startswith("noc_router_")
    assert router != module_name(NocRouter(cfg), NocConfig(cols=2, rows=3, data_bits=64))
    text = convert(NocMesh(cfg, shared=True), "noc_mesh")
    modules = re.findall(r"^module (\w+)", text, re.M)
    assert modules.count(router) == 1 and modules[-1] == "noc_mesh", modules
    assert len(re.findall(rf"^\s*{router} router_\d_\d \(", text, re.M)) == cfg.nodes
    body = text[text.index(f"module {router}"):text.index("endmodule", text.index(f"module {router}"))]
    assert "input [1:0] i_x;" in body
    assert "noc_router_" not in convert(NocMesh(cfg), "noc_mesh")
    gc.collect()


def test_mem_header_fits_and_codes():
    """The memory message definitions the network interfaces derive their layouts from."""
    from models.axi import Resp
    from models.noc import MEM_OP_BITS, STATUS_BITS, MemOp, has_data, mem_header_fields, status
    for name in ("tiny", "default", "jalapeno"):
        cfg = get_preset(name).noc
        fields = mem_header_fields(cfg)
        assert list(fields) == ["op", "addr", "len", "id"]
        assert sum(fields.values()) <= cfg.data_bits
    assert max(MemOp) < 1 << MEM_OP_BITS
    assert [op for op in MemOp if has_data(op)] == [MemOp.WRITE, MemOp.READ_RESP]
    assert status(0x1234_5602) == Resp.SLVERR and status(0x40) == Resp.OKAY
    assert max(Resp) < 1 << STATUS_BITS
