"""Testbench of the array's run-time modes: FP8 GEMMs and mixed INT8/FP8 tile streams.

A *job* is one GEMM in one mode (INT8, or FP8 with a format per operand). Jobs are fed
back to back, tile after tile, so consecutive tiles switch mode without a gap. Two
independent checks, as in :mod:`tb.systolic.tb`:

1. per result vector, in order, against ``SystolicArrayModel.tile_output`` /
   ``tile_output_fp8`` (the bits the array must emit for each tile);
2. each job re-assembled from the DUT's own outputs (INT8: wrapping adds; FP8:
   ``fp32_add`` of the K-tile partials in increasing k0 into +0.0) against
   ``gemm_int8`` / ``models.fp8.gemm_fp8(..., tile_k=R)`` on the *unpadded* matrices.

Weight rows 1..R-1 of every tile carry random ``mode`` bits: only row 0's may matter.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from models.fp32 import fp32_add
from models.fp8 import gemm_fp8
from models.systolic import array_cycles, gemm_int8, plan_gemm, wrap_int32
from rtl.systolic.pe import FP8Fmt, PEMode
from tb.systolic.tb import SystolicTB

__all__ = ["Job", "SystolicModesTB"]

_FMT = {"e4m3": FP8Fmt.E4M3.value, "e5m2": FP8Fmt.E5M2.value}


@dataclass
class Job:
    """One GEMM ``x @ w`` in one mode; ``y`` is filled from the DUT's outputs."""

    x: np.ndarray
    w: np.ndarray
    mode: str = "fp8"            # "int8" or "fp8"
    fmt_a: str = "e4m3"
    fmt_w: str = "e4m3"
    label: str = ""
    y: np.ndarray | None = field(default=None, repr=False)

    @property
    def fp8(self) -> bool:
        return self.mode == "fp8"

    @property
    def mode_fields(self) -> dict:
        if not self.fp8:
            return {"mode": PEMode.INT8.value, "fmt_a": 0, "fmt_w": 0}
        return {"mode": PEMode.FP8.value, "fmt_a": _FMT[self.fmt_a], "fmt_w": _FMT[self.fmt_w]}

    def golden(self, rows: int) -> np.ndarray:
        if self.fp8:
            return gemm_fp8(self.x, self.fmt_a, self.w, self.fmt_w, tile_k=rows)
        return gemm_int8(self.x, self.w)

    def __str__(self):
        (m, k), n = self.x.shape, self.w.shape[1]
        kind = f"fp8 {self.fmt_a}x{self.fmt_w}" if self.fp8 else "int8"
        return f"{self.label or 'job'} [{kind} {m}x{k}x{n}]"


class SystolicModesTB(SystolicTB):
    """:class:`SystolicTB` driving tiles of any mode (see the module docstring)."""

    def __init__(self, dut, **kw):
        super().__init__(dut, **kw)
        self.r_sink.on_item = self._on_job_result
        self._slots: deque = deque()       # (job, n0, row) of each result vector in flight
        self._done = 0

    # --- feeding ----------------------------------------------------------------------
    def _tiles(self, jobs):
        for job in jobs:
            for t in plan_gemm(self.acfg, job.x, job.w, fp8=job.fp8):
                yield job, t

    def _job_weight_rows(self, jobs):
        for job, t in self._tiles(jobs):
            data = t.weights.view(np.int8) if job.fp8 else t.weights
            for r in range(self.acfg.rows):
                if r == 0:
                    mode = job.mode_fields
                else:   # ignored by the array: make sure of it
                    mode = {k: self.rng.randint(0, 1) for k in ("mode", "fmt_a", "fmt_w")}
                yield {"data": data[r], "mode": mode}

    def _job_act_rows(self, jobs, corrupt=None):
        for job, t in self._tiles(jobs):
            if job.fp8:
                exp = self.model.tile_output_fp8(t.acts, job.fmt_a, t.weights, job.fmt_w)
                exp = exp.view(np.int32)
                acts = t.acts.view(np.int8)
            else:
                exp = self.model.tile_output(t.acts, t.weights)
                acts = t.acts
            if corrupt is not None:
                exp = corrupt(exp)
            M = t.acts.shape[0]
            for i in range(M):
                flags = {"first": int(i == 0), "last": int(i == M - 1)}
                self.sb.expect({"data": exp[i], **flags},
                               f"{job} tile {t.index} (k0={t.k0}, n0={t.n0}) row {i}")
                self._slots.append((job, t.n0, i))
                yield {"data": acts[i], **flags}

    def _on_job_result(self, item, cycle):
        self.sb.got(item, cycle)
        if not self._slots:
            return
        job, n0, i = self._slots.popleft()
        C = self.acfg.cols
        if job.fp8:
            part = np.asarray(item["data"], np.int32).view(np.float32)
            job.y[i, n0:n0 + C] = fp32_add(job.y[i, n0:n0 + C], part)
        else:
            job.y[i, n0:n0 + C] = wrap_int32(job.y[i, n0:n0 + C].astype(np.int64)
                                             + np.asarray(item["data"], np.int64))
        self._done += 1

    async def run_jobs(self, jobs, *, corrupt=None, timeout: int | None = None) -> int:
        """Feed every tile of ``jobs`` back to back; return the cycles taken.

        Cycles are counted from the first input accepted to the last result out.
        """
        C = self.acfg.cols
        n_out = 0
        for job in jobs:
            (M, K), N = job.x.shape, job.w.shape[1]
            job.y = np.zeros((M, len(range(0, N, C)) * C), np.float32 if job.fp8 else np.int32)
            n_out += M * self.acfg.folds(K, N)
        self._done = 0
        self._slots.clear()
        self.w_src.first_fire = self.a_src.first_fire = None
        self.w_src.feed(self._job_weight_rows(jobs))
        self.a_src.feed(self._job_act_rows(jobs, corrupt))
        bound = sum(array_cycles(self.acfg, j.x.shape[0], j.x.shape[1], j.w.shape[1])
                    for j in jobs)
        await self.wait_until(lambda: self._done >= n_out, timeout=timeout or 50 * bound + 1000,
                              what=f"{n_out} result vectors of {len(jobs)} jobs (got {self._done})")
        first_in = min(f for f in (self.w_src.first_fire, self.a_src.first_fire) if f is not None)
        return self.r_sink.last_fire - first_in + 1

    def check_job(self, job: Job) -> None:
        """The job assembled from the DUT's outputs must equal its golden GEMM bitwise."""
        N = job.w.shape[1]
        y, want = job.y[:, :N], job.golden(self.acfg.rows)
        if job.fp8:
            y, want = y.view(np.uint32), want.view(np.uint32)
        if not np.array_equal(y, want):
            bad = np.argwhere(y != want)
            i, j = bad[0]
            raise AssertionError(f"{job}: {len(bad)} wrong outputs, first Y[{i},{j}] = "
                                 f"{int(y[i, j]):#x} expected {int(want[i, j]):#x} "
                                 f"(seed {self.seed})")
