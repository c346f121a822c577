"""Functional coverage of the HBM stub's AXI responses (cocotb-coverage covergroup).

Sampled by :class:`tb.common.axi_check.AxiSlaveChecker` once per completed burst
(``on_response``), so it records what the stub actually answered. Points: direction,
burst type, length class, response; crosses: all four (the combinations AXI or the
stub cannot produce are ignored bins) and response x direction, whose bins must each be
hit :data:`ERR_X_DIR_AT_LEAST` times. Exported as ``coverage-<test>.yml`` in the run
directory (the convention of tb/dma/uvm.py).
"""
from __future__ import annotations

from cocotb_coverage.coverage import CoverCross, CoverPoint, coverage_db

from models.axi import Burst, Resp

__all__ = ["HbmCoverage", "len_class", "LEN_CLASSES", "ERR_X_DIR_AT_LEAST"]

LEN_CLASSES = {"1": (1, 1), "2-4": (2, 4), "5-16": (5, 16), "17-256": (17, 256)}
ERR_X_DIR_AT_LEAST = 3
DIRS = ["read", "write"]
BURSTS = [Burst.FIXED.name, Burst.INCR.name, Burst.WRAP.name]
RESPS = [Resp.OKAY.name, Resp.SLVERR.name, Resp.DECERR.name]
#: (burst, len, resp, dir) combinations that cannot occur: WRAP has 2/4/8/16 beats and is
#: never OKAY on the stub; FIXED has at most 16 beats (AXI4).
IGNORED = [("WRAP", "1", None, None), ("WRAP", "17-256", None, None),
           ("WRAP", None, "OKAY", None), ("FIXED", "17-256", None, None)]


def len_class(beats: int) -> str:
    return next(k for k, (lo, hi) in LEN_CLASSES.items() if lo <= beats <= hi)


class HbmCoverage:
    """Covergroup named after the test (one per test: tests share the process)."""

    def __init__(self, test: str):
        self.test = test
        self.tag = tag = f"{test}.hbm"
        xf = {
            "dir": lambda info, resp: DIRS[info.write],
            "burst": lambda info, resp: Burst(info.burst).name if info.burst < 3 else "RSVD",
            "len": lambda info, resp: len_class(info.beats),
            "resp": lambda info, resp: Resp(resp).name,
        }
        bins = {"dir": DIRS, "burst": BURSTS, "len": list(LEN_CLASSES), "resp": RESPS}
        points = [CoverPoint(f"{tag}.{name}", xf=xf[name], bins=bins[name]) for name in bins]
        sample = lambda info, resp: None        # noqa: E731
        # outside-in sampling: crosses wrap the function directly (see tb/dma/uvm.py)
        sample = CoverCross(f"{tag}.burst_x_len_x_resp_x_dir",
                            items=[f"{tag}.{n}" for n in ("burst", "len", "resp", "dir")],
                            ign_bins=IGNORED)(sample)
        sample = CoverCross(f"{tag}.resp_x_dir", items=[f"{tag}.resp", f"{tag}.dir"],
                            at_least=ERR_X_DIR_AT_LEAST)(sample)
        for point in points:
            sample = point(sample)
        self.sample = sample
        self.names = [*bins, "burst_x_len_x_resp_x_dir", "resp_x_dir"]

    def __call__(self, info, resp):
        self.sample(info, resp)

    def _cov(self, name):
        return coverage_db[f"{self.tag}.{name}"]

    def missing(self, name) -> list:
        at_least = ERR_X_DIR_AT_LEAST if name == "resp_x_dir" else 1
        return [b for b, n in self._cov(name).detailed_coverage.items() if n < at_least]

    def cross_bins(self) -> list[tuple]:
        """Every (burst, len, resp, dir) bin of the full cross (ignored ones left out)."""
        return list(self._cov("burst_x_len_x_resp_x_dir").detailed_coverage)

    def hits(self, name) -> dict:
        return dict(self._cov(name).detailed_coverage)

    def export(self, log) -> None:
        coverage_db.report_coverage(log.info, bins=False)
        coverage_db.export_to_yaml(f"coverage-{self.test}.yml")

    def assert_closed(self, seed) -> None:
        for n in self.names:
            assert not self.missing(n), \
                f"HBM coverage {n}: bins missing {self.missing(n)[:8]} (seed {seed})"
