# amaranth: UnusedElaboratable=no
"""The register description (rtl/regs/jalapeno.rdl) compiles for every preset, follows the
config, and generates the C header, the docs and the testbench model; the exporter
rejects what it does not implement, naming it. No simulator."""
import dataclasses
import json
import shutil
import subprocess
import zlib

import pytest

from models.config import PRESETS, get_preset
from rtl.regs.description import RegsError, compile_rdl, config_hash, flatten, \
    rdl_parameters, regmap
from scripts import gen_regs

PRESET_NAMES = sorted(PRESETS)


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_map_follows_config(preset):
    cfg = get_preset(preset)
    m = regmap(cfg)
    assert dict(m.parameters) == rdl_parameters(cfg)
    assert sum(1 for r in m if r.key == "tile_status") == cfg.soc.tiles
    addrs = [r.address for r in m]
    assert addrs == sorted(set(addrs)) and all(a % 4 == 0 and a < m.size for a in addrs)
    assert m.size <= 1 << m.addr_width
    fields = {f"{r.path}.{f.name}": f for r in m for f in r.fields}
    assert fields["ID.id"].reset_value.to_bytes(4, "big") == b"JLPN"
    assert fields["ARRAY_SHAPE.rows"].reset_value == cfg.systolic.rows
    assert fields["ARRAY_SHAPE.cols"].reset_value == cfg.systolic.cols
    assert fields["CAPABILITY.fp8"].reset_value == int(cfg.systolic.fp8)
    assert fields["CAPABILITY.tiles"].reset_value == cfg.soc.tiles
    assert fields["CAPABILITY.hbm_channels"].reset_value == cfg.hbm.channels
    assert fields["CONFIG_HASH.hash"].reset_value == zlib.crc32(cfg.to_json().encode())
    assert (1 << fields["BYTES_READ.bytes"].incr_width) > cfg.hbm.data_bytes
    for r in m:                                   # fields inside the word, no overlap
        used = 0
        for f in r.fields:
            assert f.msb < 32 and not used & f.mask, f"{r.path}.{f.name}"
            used |= f.mask


def test_semantics_of_named_fields():
    """The kinds the host interface relies on (docs/registers.md)."""
    m = regmap(get_preset("tiny"))
    kind = lambda p: m.field(p)[1]                  # noqa: E731
    assert kind("CONTROL.soft_reset").singlepulse
    assert kind("RING_TAIL.index").swmod and kind("RING_TAIL.index").kind == "control"
    assert kind("RING_HEAD.index").kind == "wire"
    for f in ("done", "error", "halt"):
        k = kind(f"INTR_STATUS.{f}")
        assert (k.kind, k.precedence, k.enable) == ("intr", "hw", f"INTR_ENABLE.{f}")
    assert kind("COMPLETIONS.count").kind == "counter"
    assert kind("TILE[1].STATUS.load_busy").kind == "wire"
    ports = {p.name: p for p in m.ports()}
    assert ports["o_ring_tail_index_wr"].width == 1
    assert ports["o_intr_status_intr"].direction == "o"
    assert ports["i_tile_status_error"].dims == (get_preset("tiny").soc.tiles,)
    assert all(p.name[:2] in ("i_", "o_") for p in ports.values())


def test_config_hash_tracks_config():
    cfg = get_preset("tiny")
    other = dataclasses.replace(cfg, clock_mhz=cfg.clock_mhz + 1)
    assert config_hash(cfg) != config_hash(other)
    assert regmap(cfg).field("CONFIG_HASH.hash")[1].reset_value == config_hash(cfg)


def test_every_parameter_comes_from_the_config():
    params = rdl_parameters(get_preset("tiny"))
    missing = dict(params)
    del missing["ARRAY_ROWS"]
    with pytest.raises(RegsError, match="ARRAY_ROWS"):
        compile_rdl(missing)
    with pytest.raises(RegsError, match="BOGUS"):
        compile_rdl(params | {"BOGUS": 1})
    with pytest.raises(RegsError, match="Array dimension"):
        compile_rdl(params | {"N_TILES": 0})


def _rdl(tmp_path, body: str):
    p = tmp_path / "t.rdl"
    p.write_text("addrmap jalapeno_regs { default regwidth = 32; " + body + " };")
    return flatten(compile_rdl({}, rdl_file=p))


@pytest.mark.parametrize("body, message", [
    ("reg { field { sw = rw; hw = rw; } x[0:0] = 0; } R @ 0;", r"R\.x: sw=rw, hw=rw"),
    ("reg { field { sw = r; hw = r; rclr; } x[0:0] = 0; } R @ 0;", r"R\.x: properties \['rclr'\]"),
    ("reg { field { sw = rw; hw = r; counter; } x[7:0] = 0; } R @ 0;", r"R\.x: a counter"),
    ("reg { field { sw = rw; hw = r; onwrite = woclr; } x[0:0] = 0; } R @ 0;", "onwrite=woclr"),
    ("reg { field { sw = r; hw = na; } x[0:0]; } R @ 0;", "needs a reset"),
    ("reg { regwidth = 64; field { sw = rw; hw = r; } x[63:0] = 0; } R @ 0;", "32-bit"),
    ("reg { field { sw = rw; hw = w; intr; onwrite = woclr; } x[0:0] = 0; } R @ 0; "
     "reg { field { sw = r; hw = w; } e[0:0]; } E @ 4; R.x->enable = E.e;", "must be sw-written"),
])
def test_exporter_rejects_what_it_does_not_implement(tmp_path, body, message):
    with pytest.raises(RegsError, match=message):
        _rdl(tmp_path, body)


def test_port_name_clash_is_an_error(tmp_path):
    with pytest.raises(RegsError, match="two ports named 'o_a_b_c'"):
        _rdl(tmp_path, "reg { field { sw = rw; hw = r; } b_c[0:0] = 0; } A @ 0; "
                       "reg { field { sw = rw; hw = r; } c[0:0] = 0; } A_B @ 4;")


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_block_signature_follows_map(preset):
    from rtl.regs.block import HostRegs
    cfg = get_preset(preset)
    block = HostRegs(cfg)
    m = block.regs
    assert block.s_axil.signature.addr_width == m.addr_width
    members = dict(block.signature.members)
    assert set(members) == {"s_axil"} | {p.name for p in m.ports()}


@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_outputs_generate(tmp_path, preset):
    """C header (compiled by gcc, offsets checked against the TB model), docs, model."""
    cfg = get_preset(preset)
    out = {k: tmp_path / v.name for k, v in gen_regs.OUTPUTS.items()}
    assert gen_regs.write_all(cfg, out) == {k: True for k in out}
    assert gen_regs.write_all(cfg, out) == {k: False for k in out}      # unchanged
    m = regmap(cfg)
    header, docs = out["header"].read_text(), out["docs"].read_text()
    model = json.loads(out["model"].read_text())
    assert f"{config_hash(cfg):#010x}" in header and "Do not edit" in header
    assert [r["address"] for r in model["registers"]] == [r.address for r in m]
    for r in m:
        if not r.index or r.index == (0,):
            assert r.path.split(".")[-1] in docs, r.path
    assert "JALAPENO_REGS__CONTROL__SOFT_RESET_bm 0x2" in header
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("no gcc to compile the header")
    checks = []
    for r in m:
        if "[" in r.path:
            rf, reg = r.path.split(".")
            member = f"{rf.split('[')[0]}[{r.index[0]}].{reg}"
        else:
            member = r.path
        checks.append(f'_Static_assert(offsetof(jalapeno_regs_t, {member}) == {r.address:#x}, '
                      f'"{r.path}");')
    src = tmp_path / "check.c"
    src.write_text('#include <stddef.h>\n#include "jalapeno_regs.h"\n' + "\n".join(checks) +
                   f"\n_Static_assert(sizeof(jalapeno_regs_t) == {m.size:#x}, \"size\");\n")
    res = subprocess.run([gcc, "-std=c11", "-Wall", "-Werror", "-fsyntax-only", "-I", str(tmp_path),
                          str(src)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
