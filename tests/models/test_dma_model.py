"""models.dma against brute-force references: checks, burst plan, byte-accurate copy."""
import dataclasses
import random

import numpy as np
import pytest

from models import dma as model
from models.config import ConfigError, DmaConfig, get_preset
from models.dma import Descriptor, DmaDir, DmaError
from tb.dma.seq import random_descriptor

CFG = get_preset("tiny")
W = CFG.hbm.data_bytes


def _brute_copy(d, hbm, sram):
    src, dst = (hbm, sram) if d.dir == DmaDir.LOAD else (sram, hbm)
    for z in range(d.planes):
        for y in range(d.rows):
            for x in range(d.row_bytes):
                dst[d.dst + z * d.dst_zstride + y * d.dst_ystride + x] = \
                    src[d.src + z * d.src_zstride + y * d.src_ystride + x]


@pytest.mark.parametrize("seed", range(40))
def test_apply_and_plan_match_brute_force(seed):
    rng = random.Random(seed)
    hbm_n, sram_n = 32 * 1024, CFG.dma.sram_bytes
    d = random_descriptor(rng, W, hbm_n, sram_n, align=rng.choice([None, "4k"]))
    assert model.check_descriptor(CFG.dma, W, d, 0, hbm_n) == DmaError.OK
    hbm = np.frombuffer(rng.randbytes(hbm_n), np.uint8).copy()
    sram = np.frombuffer(rng.randbytes(sram_n), np.uint8).copy()
    h2, s2 = hbm.copy(), sram.copy()
    model.apply(d, hbm, sram)
    _brute_copy(d, h2, s2)
    assert np.array_equal(hbm, h2) and np.array_equal(sram, s2)
    # the bursts cover exactly the AXI-side bytes, never cross the chunk (or 4 KiB)
    chunk = model.burst_chunk(CFG.dma, W)
    covered = []
    for b in model.plan_bursts(CFG.dma, W, d):
        assert 1 <= b.beats <= CFG.dma.max_burst_beats
        first = b.addr // W
        assert (first * W) // chunk == ((first + b.beats) * W - 1) // chunk
        assert (first * W) // 4096 == ((first + b.beats) * W - 1) // 4096
        for i, s in enumerate(b.strobes):
            covered += [(first + i) * W + k for k in range(W) if s >> k & 1]
    base, ys, zs = d.axi
    want = [base + z * zs + y * ys + x for z in range(d.planes) for y in range(d.rows)
            for x in range(d.row_bytes)]
    assert covered == want


def test_check_order_and_codes():
    c = CFG.dma
    L, S = DmaDir.LOAD, DmaDir.STORE
    chk = lambda d, wb=0, wl=1 << 16: model.check_descriptor(c, W, d, wb, wl)   # noqa: E731
    assert chk(Descriptor(L, 0, 0, 0)) == DmaError.BAD_LENGTH
    assert chk(Descriptor(L, 1, 0, 0)) == DmaError.BAD_LENGTH            # length before alignment
    assert chk(Descriptor(L, 0, 0, c.max_bytes + 1)) == DmaError.BAD_LENGTH
    assert chk(Descriptor(L, 1, 0, 8)) == DmaError.MISALIGNED
    assert chk(Descriptor(L, 0, 0, 8, 2, 1, 9, 8)) == DmaError.MISALIGNED
    assert chk(Descriptor(L, 0, 0, 8, 1, 1, 9, 8)) == DmaError.OK          # stride unused: 1 row
    assert chk(Descriptor(L, 0x100, 0, 8), 0x200) == DmaError.WINDOW
    assert chk(Descriptor(S, 0, 0x1F8, 16), 0, 0x200) == DmaError.WINDOW
    assert chk(Descriptor(L, 0, c.sram_bytes - 8, 16)) == DmaError.WINDOW
    assert chk(Descriptor(L, 0, c.sram_bytes - 16, 16)) == DmaError.OK


@pytest.mark.parametrize("kw, msg", [
    ({"max_burst_beats": 3}, "DmaConfig.max_burst_beats must be a power of two, got 3"),
    ({"max_outstanding": 0}, "DmaConfig.max_outstanding must be in [1, 64], got 0"),
    ({"sram_bytes": 100}, "DmaConfig.sram_bytes must be in [256, 1073741824], got 100"),
    ({"desc_depth": 17}, "DmaConfig.desc_depth must be in [1, 16], got 17"),
    ({"descs_in_flight": 0}, "DmaConfig.descs_in_flight must be in [1, 64], got 0"),
    ({"descs_in_flight": 8.0}, "DmaConfig.descs_in_flight must be an int, got 8.0"),
])
def test_config_errors(kw, msg):
    with pytest.raises(ConfigError) as e:
        DmaConfig(**kw)
    assert str(e.value) == msg


def test_stream_cycles():
    """Timing model: isolated = latency + beats + 6; back to back = data-bound; the
    in-flight limit (DmaConfig.descs_in_flight, which the RTL reads too) and the
    outstanding limit cost cycles."""
    c = get_preset("default")
    Wd = c.hbm.data_bytes
    L = DmaDir.LOAD
    for lat in (20, 100, 200):
        one = model.stream_cycles(c.dma, c.hbm, [Descriptor(L, 0, 0, 4096)], latency=lat)
        assert one == [lat + 4096 // Wd + 5]
        n = 16
        descs = [Descriptor(L, i * 4096, i * 4096, 4096) for i in range(n)]
        done = model.stream_cycles(c.dma, c.hbm, descs, latency=lat)
        assert done == sorted(done) and len(set(done)) == n
        beats = n * 4096 // Wd
        assert beats <= done[-1] + 1 <= beats + lat + 6 + 2 * n, done[-1]
    small = [Descriptor(L, i * 64, i * 64, 64) for i in range(32)]
    k1 = model.stream_cycles(dataclasses.replace(c.dma, descs_in_flight=1), c.hbm, small)[-1]
    k8 = model.stream_cycles(dataclasses.replace(c.dma, descs_in_flight=8), c.hbm, small)[-1]
    assert k1 > 4 * k8, "one descriptor in flight must serialize the latency"
    # 2 x 16-beat bursts in flight cannot cover a 100-cycle latency; 32 can
    wide = dataclasses.replace(c.dma, max_outstanding=32, max_burst_beats=16)
    narrow = dataclasses.replace(wide, max_outstanding=2)
    big = [Descriptor(L, 0, 0, 1 << 16)]
    assert model.stream_cycles(narrow, c.hbm, big)[-1] > \
        2 * model.stream_cycles(wide, c.hbm, big)[-1]


def test_descs_in_flight_is_one_config_value():
    """Every preset has the same in-flight depth (8), and the RTL sizes its bookkeeping
    queues from the config, not from a constant of its own."""
    from models.config import PRESETS
    from rtl.dma.engine import DmaEngine
    assert {p.dma.descs_in_flight for p in PRESETS.values()} == {8}
    import rtl.dma.engine as engine
    assert not [n for n in vars(engine) if "IN_FLIGHT" in n.upper()]
    cfg = dataclasses.replace(CFG.dma, descs_in_flight=3)
    assert DmaEngine(cfg, data_bytes=W, id_bits=1).cfg.descs_in_flight == 3
