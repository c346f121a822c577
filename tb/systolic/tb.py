"""Testbench for :class:`rtl.systolic.array.SystolicArray`.

Two independent checks of every GEMM:

1. per result vector, in order, against ``SystolicArrayModel.tile_output`` (what the
   array must emit for each weight tile, including ``first``/``last`` framing);
2. the GEMM re-assembled from the DUT's own outputs against ``gemm_int8`` (exact
   int64 arithmetic, wrapped), so a tiling bug in the model cannot hide a DUT bug.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.systolic import SystolicArrayModel, array_cycles, gemm_int8, plan_gemm, wrap_int32
from rtl.systolic.array import act_layout, result_layout, weight_layout
from tb.common.clocked import ClockedTB
from tb.common.scoreboard import Scoreboard
from tb.common.stream import Pacer, StreamSink, StreamSource

__all__ = ["SystolicTB", "GemmResult", "STALL_MODES"]

# (name, stall probability, max stall burst) that directed tests run under
STALL_MODES = [("no stalls", 0.0, 1), ("random stalls", 0.3, 1), ("bursty stalls", 0.2, 6)]


@dataclass
class GemmResult:
    """What one GEMM run measured."""

    m: int
    k: int
    n: int
    cycles: int          # first input accepted .. last result out, inclusive
    model_cycles: int    # models.systolic.array_cycles (no-stall prediction)
    y: np.ndarray        # the GEMM assembled from the DUT's outputs


class SystolicTB(ClockedTB):
    """Clock, reset, weight/activation sources, result sink, scoreboard.

    Parameters
    ----------
    dut : cocotb handle of ``systolic_array``
    stall : float
        Idle probability of both sources and backpressure probability of the sink.
    burst : int
        Maximum length of one stall (bursty stalls when > 1).
    """

    def __init__(self, dut, *, stall: float = 0.0, burst: int = 1):
        super().__init__(dut)
        self.acfg = self.config.systolic
        self.model = SystolicArrayModel(self.acfg)
        self.sb = Scoreboard("systolic_array", self.log)
        self._gemm = None
        self.w_src = self.add(StreamSource(dut, "i_weight", weight_layout(self.acfg)))
        self.a_src = self.add(StreamSource(dut, "i_act", act_layout(self.acfg)))
        self.r_sink = self.add(StreamSink(dut, "o_result", result_layout(self.acfg),
                                          on_item=self._on_result))
        self.set_stalls(stall, burst)

    def set_stalls(self, stall: float, burst: int = 1) -> None:
        """Random idle cycles on both inputs and backpressure on the output."""
        for agent in (self.w_src, self.a_src, self.r_sink):
            agent.pacer = Pacer(stall, burst=burst, rng=self.rng)

    def _on_result(self, item, cycle):
        self.sb.got(item, cycle)
        g = self._gemm
        if g is not None:      # assemble Y from the DUT's own outputs, wrapping like INT32
            t, i = divmod(g["count"], g["m"])
            n0 = g["n0"][t]
            g["y"][i, n0:n0 + self.acfg.cols] = wrap_int32(
                g["y"][i, n0:n0 + self.acfg.cols] + np.asarray(item["data"], np.int64))
            g["count"] += 1

    def _weight_rows(self, tiles):
        for t in tiles:
            for r in range(self.acfg.rows):
                yield {"data": t.weights[r]}

    def _act_rows(self, tiles, corrupt=None):
        """Activation vectors of each tile; queues the expected results as it goes."""
        for t in tiles:
            exp = self.model.tile_output(t.acts, t.weights)
            if corrupt is not None:
                exp = corrupt(exp)
            M = t.acts.shape[0]
            for i in range(M):
                flags = {"first": int(i == 0), "last": int(i == M - 1)}
                self.sb.expect({"data": exp[i], **flags},
                               f"tile {t.index} (k0={t.k0}, n0={t.n0}) row {i}")
                yield {"data": t.acts[i], **flags}

    async def run_gemm(self, x, w, *, corrupt=None, timeout: int | None = None) -> GemmResult:
        """Run ``x @ w`` through the array, check every vector, return the measurements.

        Tiles are fed lazily, so runs of millions of cycles keep little in memory.
        ``corrupt(expected_tile) -> tile`` (self-check only) alters the expectation.
        """
        x, w = np.asarray(x), np.asarray(w)
        (M, K), N = x.shape, w.shape[1]
        tiles = plan_gemm(self.acfg, x, w)
        C = self.acfg.cols
        self._gemm = g = {"m": M, "n0": [t.n0 for t in tiles], "count": 0,
                          "y": np.zeros((M, len(range(0, N, C)) * C), np.int64)}
        self.w_src.first_fire = self.a_src.first_fire = None
        self.w_src.feed(self._weight_rows(tiles))
        self.a_src.feed(self._act_rows(tiles, corrupt))
        n_out = len(tiles) * M
        predicted = array_cycles(self.acfg, M, K, N)
        await self.wait_until(lambda: g["count"] >= n_out, timeout=timeout or 50 * predicted + 1000,
                              what=f"{n_out} result vectors of a {M}x{K}x{N} GEMM "
                                   f"(got {g['count']})")
        self._gemm = None
        first_in = min(f for f in (self.w_src.first_fire, self.a_src.first_fire) if f is not None)
        cycles = self.r_sink.last_fire - first_in + 1
        return GemmResult(M, K, N, cycles, predicted, g["y"][:, :N].astype(np.int32))

    def check_gemm(self, x, w, res: GemmResult) -> None:
        """The assembled GEMM must equal the exact golden GEMM."""
        golden = gemm_int8(x, w)
        if not np.array_equal(res.y, golden):
            bad = np.argwhere(res.y != golden)
            i, j = bad[0]
            raise AssertionError(f"GEMM {res.m}x{res.k}x{res.n}: {len(bad)} wrong outputs, first "
                                 f"Y[{i},{j}] = {res.y[i, j]} expected {golden[i, j]} "
                                 f"(seed {self.seed})")

    def finish(self) -> None:
        """End-of-test checks: scoreboard complete, no protocol violations."""
        self.sb.check()
        assert not self.r_sink.protocol_errors, self.r_sink.protocol_errors[:5]
