"""models.hbm: address map, burst verdicts and the analytic timing model; HbmConfig checks."""
import random

import pytest

from models.config import ConfigError, HbmConfig, get_preset
from models.axi import Burst, Resp
from models.hbm import ErrKind, User, burst_verdict, route, transfer_cycles, unroute


@pytest.mark.parametrize("preset", ["tiny", "default", "jalapeno"])
def test_route_is_a_bijection(preset):
    h = get_preset(preset).hbm
    rng = random.Random(1)
    seen = set()
    for a in [0, h.interleave_bytes - 1, h.interleave_bytes, h.total_bytes - 1] + \
            [rng.randrange(h.total_bytes) for _ in range(2000)]:
        ch, local = route(h, a)
        assert 0 <= ch < h.channels and 0 <= local < h.channel_bytes
        assert unroute(h, ch, local) == a
        seen.add((ch, local))
    # consecutive granules rotate over the channels
    assert [route(h, i * h.interleave_bytes)[0] for i in range(h.channels)] == list(range(h.channels))


def test_burst_verdicts():
    h = get_preset("tiny").hbm
    W = h.data_bytes
    assert burst_verdict(h, 0, 4, 3) == Resp.OKAY
    assert burst_verdict(h, h.interleave_bytes - W, 2, 3) == Resp.DECERR      # crosses a granule
    assert burst_verdict(h, h.total_bytes, 1, 3) == Resp.DECERR               # past the end
    assert burst_verdict(h, 0, 1, 3, burst=Burst.WRAP) == Resp.SLVERR         # WRAP
    assert burst_verdict(h, 0, 1, 4) == Resp.SLVERR                           # wider than the bus
    assert burst_verdict(h, 64, 2, 3, 1, ErrKind.SLVERR, 72, 80) == Resp.SLVERR
    assert burst_verdict(h, 64, 1, 3, 1, ErrKind.SLVERR, 72, 80) == Resp.OKAY  # touches [64, 72)
    poison = (h, 64, 2, 3, 1, ErrKind.POISON, 72, 80)
    assert burst_verdict(*poison) == Resp.SLVERR                 # a poisoned read
    assert burst_verdict(*poison, write=True) == Resp.OKAY       # a poisoned write lands
    assert burst_verdict(h, 64, 2, 3, 1, ErrKind.SLVERR, 72, 80, write=True) == Resp.SLVERR


def test_transfer_cycles_bounds():
    h = get_preset("default").hbm
    for n_bursts, beats, out in [(1, 1, 32), (64, 16, 32), (4096, 1, 32), (64, 16, 2)]:
        c = transfer_cycles(h, [beats] * n_bursts, outstanding=out, overhead=0)
        total = n_bursts * beats
        assert c >= total and c >= h.read_latency + beats
        # with enough outstanding, long transfers run at the port rate
        if out * beats >= h.read_latency + beats and n_bursts * beats > 50 * h.read_latency:
            assert c <= total + h.read_latency + 2
    few = transfer_cycles(h, [16] * 64, outstanding=2)
    many = transfer_cycles(h, [16] * 64, outstanding=32)
    assert few > 2 * many, "the outstanding limit must cost cycles"


@pytest.mark.parametrize("kw, msg", [
    ({"channels": 3}, "HbmConfig.channels must be a power of two, got 3"),
    ({"data_bytes": 128}, "HbmConfig.data_bytes must be in [4, 64], got 128"),
    ({"bytes_per_cycle": 17}, "HbmConfig.bytes_per_cycle must be in [1, 16], got 17"),
    ({"read_latency": 1}, "HbmConfig.read_latency must be in [2, 4095], got 1"),
    ({"interleave_bytes": 8192}, "HbmConfig.interleave_bytes must be in [64, 4096], got 8192"),
    ({"store_bytes": 1 << 20, "channel_bytes": 1 << 16},
     "HbmConfig.store_bytes must be in [4096, 65536], got 1048576"),
    ({"data_bytes": 64, "interleave_bytes": 64, "bytes_per_cycle": 8}, None),
])
def test_config_errors(kw, msg):
    if msg is None:
        HbmConfig(**kw)
        return
    with pytest.raises(ConfigError) as e:
        HbmConfig(**kw)
    assert str(e.value) == msg


def test_error_codes_defined_once():
    """The router passes an injected ErrKind through as the channel's User verdict."""
    assert (User.SLVERR, User.POISON) == (ErrKind.SLVERR, ErrKind.POISON)
    assert (User.OK, User.DECERR) == (0, 3) and ErrKind.OFF == 0
