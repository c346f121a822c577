"""The subordinate-side AXI checker (tb/common/axi_check.py) on synthetic traces: a legal
trace passes, every rule catches its violation (no simulator, milliseconds)."""
import pytest

from models.axi import Burst, Resp
from tb.common.axi_check import AxiSlaveChecker, StableRule

IDLE = {n: 0 for n in AxiSlaveChecker.NAMES}


def _cyc(**kw):
    v = dict(IDLE)
    v.update(kw)
    return v


def ar(id, beats, addr=0x100):
    return _cyc(arvalid=1, arready=1, arid=id, arlen=beats - 1, araddr=addr, arsize=3,
                arburst=Burst.INCR)


def aw(id, beats, addr=0x100):
    return _cyc(awvalid=1, awready=1, awid=id, awlen=beats - 1, awaddr=addr, awsize=3,
                awburst=Burst.INCR)


def r(id, last, data=0, resp=Resp.OKAY, ready=1):
    return _cyc(rvalid=1, rready=ready, rid=id, rlast=last, rdata=data, rresp=resp)


def w(last):
    return _cyc(wvalid=1, wready=1, wlast=last)


def b(id, resp=Resp.OKAY, ready=1):
    return _cyc(bvalid=1, bready=ready, bid=id, bresp=resp)


def _run(trace, **kw):
    chk = AxiSlaveChecker(**kw)
    for i, v in enumerate(trace):
        chk.step(i, v)
    return chk


GOOD = [ar(1, 2), ar(2, 1), r(1, 0), r(1, 1), r(2, 1), aw(3, 2), w(0), w(1), b(3),
        aw(4, 1), aw(4, 1), w(1), w(1), b(4), b(4)]


def test_legal_trace_passes():
    chk = _run(GOOD)
    chk.finish()
    assert chk.bursts == {"R": 2, "B": 3}


# (name, trace, words the error message must contain)
BAD = [
    ("RLAST early", [ar(1, 2), r(1, 1), r(1, 1)], "RLAST=1 on beat 1"),
    ("RLAST missing", [ar(1, 2), r(1, 0), r(1, 0)], "RLAST=0 on beat 2"),
    ("RID unknown", [ar(1, 1), r(2, 1)], "RID 2"),
    ("R without request", [r(0, 1)], "no outstanding AR"),
    ("BID != AWID", [aw(3, 1), w(1), b(5)], "BID 5"),
    ("B without request", [b(0)], "no outstanding AW"),
    ("B before last W", [aw(3, 2), w(0), b(3)], "before its last W beat"),
    ("per-ID order (second burst answered first)", [ar(1, 2), ar(1, 1), r(1, 1)],
     "RLAST=1 on beat 1"),
    ("RVALID dropped", [ar(1, 1), r(1, 1, ready=0), IDLE], "RVALID dropped"),
    ("R payload changed", [ar(1, 1), r(1, 1, data=5, ready=0), r(1, 1, data=6)],
     "R payload changed"),
    ("BVALID dropped", [aw(3, 1), w(1), b(3, ready=0), IDLE], "BVALID dropped"),
    ("B payload changed", [aw(3, 1), w(1), b(3, Resp.OKAY, ready=0), b(3, Resp.SLVERR)],
     "B payload changed"),
    ("burst never answered", [ar(1, 2), r(1, 0)], "never answered"),
]


@pytest.mark.parametrize("name,trace,words", BAD, ids=[x[0] for x in BAD])
def test_violation_caught(name, trace, words):
    chk = _run(trace)
    with pytest.raises(AssertionError, match=words):
        chk.finish()


def test_response_code_against_verdict():
    """A verdict callback makes every RRESP/BRESP a checked value."""
    verdict = lambda write, addr, beats, size, burst: Resp.DECERR if addr >= 0x1000 \
        else Resp.OKAY   # noqa: E731
    seen = []
    ok = _run([ar(1, 1, 0x1000), r(1, 1, resp=Resp.DECERR), aw(2, 1), w(1), b(2)],
              verdict=verdict, on_response=lambda info, resp: seen.append((info.write, resp)))
    ok.finish()
    assert seen == [(False, Resp.DECERR), (True, Resp.OKAY)]
    bad = _run([ar(1, 1, 0x1000), r(1, 1, resp=Resp.OKAY), aw(2, 1, 0x2000), w(1), b(2)],
               verdict=verdict)
    with pytest.raises(AssertionError) as e:
        bad.finish()
    assert "RRESP 0" in str(e.value) and "BRESP 0" in str(e.value)


def test_stable_rule_alone():
    s = StableRule()
    assert s.check("AW", 1, 0, (1,)) is None
    assert s.check("AW", 1, 1, (1,)) is None
    assert s.check("AW", 1, 0, (2,)) is None
    assert "changed" in s.check("AW", 1, 1, (3,))


def test_axi_lite_mode():
    """AXI4-Lite: no ID/LEN/LAST on the port; one beat per burst, W may precede AW."""
    lite = {n: 0 for n in AxiSlaveChecker.NAMES if n not in AxiSlaveChecker.LITE_DEFAULTS}

    def cyc(**kw):
        v = dict(lite)
        v.update(kw)
        return v

    def run(trace):
        chk = AxiSlaveChecker(lite=True)
        for i, v in enumerate(trace):
            chk.step(i, {**chk.defaults, **v})
        return chk

    good = run([cyc(wvalid=1, wready=1), cyc(awvalid=1, awready=1), cyc(bvalid=1, bready=1),
                cyc(arvalid=1, arready=1), cyc(rvalid=1, rready=1, rdata=7)])
    good.finish()
    assert good.bursts == {"R": 1, "B": 1}
    bad = run([cyc(awvalid=1, awready=1), cyc(bvalid=1, bready=1), cyc(rvalid=1, rready=1)])
    with pytest.raises(AssertionError) as e:
        bad.finish()
    assert "before its last W beat" in str(e.value) and "no outstanding AR" in str(e.value)
