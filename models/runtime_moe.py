"""Host runtime of the MoE layer on the chip: ``models.moe.moe_layer(..., backend="rtl")``.

:func:`run_moe` builds the HBM image (``models.compiler_moe``: x, router, experts),
runs program 1 (routing + DISPATCH), reads the dispatch unit's counters from the HBM
image it left, places the experts on the tiles (``models.moe_perf.place_experts``,
with or without splitting), writes program 2 (experts + combine) into that image and
runs it. Backends: ``"model"`` (``models.chip.ChipModel``, both programs) and
``"rtl"`` (the SoC RTL: two simulator runs through :func:`models.rtl_backend.run_rtl`,
the HBM image of run 1 feeding run 2). Every run is checked bit for bit against
``models.moe.moe_forward`` (ranking, softmax weights, dispatch tables and counters, y,
out); a mismatch raises ``RuntimeError`` naming the first field that differs.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models import compiler_moe as cm
from models import moe as _moe
from models.chip import ChipModel, write_ring
from models.isa import Opcode
from models.tensor_cmd import Unit
from models.vector import vector_latency
from models.compiler import IRQ_DONE, FitError, ceil_div
from models.isa import CMD_BYTES
from models.rtl_backend import RtlJob, run_rtl
from models.runtime import _check_backend, resolve_config

__all__ = ["MoeRun", "MoeRtlResult", "run_moe", "moe_layer_rtl", "compare"]


@dataclass
class MoeRun:
    """One layer on the chip.

    Attributes
    ----------
    model : models.moe.MoeResult
        The golden model's result (``moe_forward``); ``out`` etc. equal the chip's.
    chip : models.compiler_moe.MoeChipResult
        What the chip left in HBM.
    plan : models.compiler_moe.MoePlan
    placement : list
        Per tile its ``(expert, first row, rows)`` pieces.
    programs : tuple of two command lists
    results : tuple of two models.chip.ChipResult
    backend : str
    cycles : tuple of int or None
        RTL: cycles doorbell -> IRQ of program 1 and program 2.
    rtl : tuple of models.rtl_backend.RtlRun or None
    """

    model: _moe.MoeResult
    chip: cm.MoeChipResult
    plan: cm.MoePlan
    placement: list
    programs: tuple
    results: tuple
    backend: str = "model"
    cycles: tuple | None = None
    rtl: tuple | None = None

    @property
    def total_cycles(self) -> int | None:
        return None if self.cycles is None else sum(self.cycles)


def compare(model: _moe.MoeResult, chip: cm.MoeChipResult, plan: cm.MoePlan) -> list[str]:
    """Fields where the chip's result differs from the model's (empty: bit-exact)."""
    p, d = model.problem, model.dispatch
    bits = lambda a: np.asarray(a, np.float32).view(np.uint32)  # noqa: E731
    slot = np.where(d.slot >= 0, d.slot, plan.drop_slot)
    checks = [
        ("ranking", np.array_equal(chip.ranking, model.routing.ranking)),
        ("weights", np.array_equal(bits(chip.weights), bits(model.routing.weights))),
        ("tokens_per_expert", np.array_equal(chip.counts["tokens_per_expert"],
                                             d.tokens_per_expert)),
        ("offsets", np.array_equal(chip.counts["offsets"], d.offsets)),
        ("dropped", chip.counts["dropped"] == d.dropped),
        ("dropped_tokens", chip.counts["dropped_tokens"] == d.dropped_tokens),
        ("kept", chip.counts["kept"] == d.slot_token.size),
        ("slot", np.array_equal(chip.slot, slot)),
        ("slot_token", chip.slot_token.shape == d.slot_token.shape
         and np.array_equal(chip.slot_token, d.slot_token)),
        ("y", chip.y.shape == model.y.shape and np.array_equal(bits(chip.y), bits(model.y))),
        ("out", np.array_equal(bits(chip.out), bits(model.out))),
    ]
    return [name for name, ok in checks if not ok] if p else []


def _serial_cycles(cfg, cmds) -> int:
    """Cycles of the program with nothing overlapped (every tensor command and every
    DMA byte at one beat per cycle, one after another): the bound of the RTL's wait.
    (``models.chip_perf.stream_roofline`` needs the index lists of indexed descriptors,
    which program 2 reads from HBM.)"""
    lat, R, W = vector_latency(cfg.systolic.cols), cfg.systolic.rows, cfg.hbm.data_bytes
    n = 0
    for c in cmds:
        if c.opcode == Opcode.TENSOR:
            tc = c.tensor
            n += max(tc.count, R) if tc.unit == Unit.MATMUL else tc.count + lat
        elif c.desc is not None:
            n += c.desc.rows * c.desc.planes * (ceil_div(c.desc.row_bytes, W) + 1)
    return n


def _ring_job(cfg, hbm: np.ndarray, at: int, cmds, read: tuple[int, int]) -> tuple[RtlJob, int]:
    entries = write_ring(hbm, at, cmds) + 1
    bound = _serial_cycles(cfg, cmds)
    return RtlJob(hbm, at, entries, *read, int(4 * bound + 500 * len(cmds) + 100_000)), entries


def _run(cfg, job: RtlJob, backend: str, sim: str, seed, what: str, opt, policy: str):
    """(ChipResult, RtlRun or None) of one program; raises unless it ended with its IRQ."""
    rtl = None
    if backend == "rtl":
        (rtl,) = run_rtl(cfg, [job], sim=sim, seed=seed, verilator_opt=opt)
        res = rtl.result
    else:
        chip = ChipModel(cfg, job.hbm, policy=policy, seed=seed)
        res = chip.run_ring(job.ring_addr, job.entries, 0, job.entries - 1)
    n = job.entries - 1
    if not res.ok or res.irqs != [IRQ_DONE] or res.completed != n:
        where = f"on the SoC RTL ({sim}; log {rtl.sim_run.log_file})" if rtl else \
            "on the chip model"
        raise RuntimeError(f"MoE {what} failed {where}: {res.error!r} at {res.error_addr}, "
                           f"{res.completed}/{n} completed")
    return res, rtl


def run_moe(problem: _moe.MoeProblem, inputs: _moe.MoeInput, weights: _moe.MoeWeights, *,
            config="default", backend: str = "model", split: bool = True,
            sim: str = "verilator", seed: int | None = None, policy: str = "oldest",
            chunk_tiles: int | None = None,
            block_rows: int | None = None, verilator_opt: str | None = None,
            check: bool = True) -> MoeRun:
    """The layer on quantized data, both programs on ``backend`` (module docstring).

    ``policy`` / ``seed``: the chip model's execution order (``models.chip.ChipModel``);
    ``sim`` / ``seed`` / ``verilator_opt``: the RTL run's (``models.rtl_backend.run_rtl``).
    ``chunk_tiles`` / ``block_rows``: ``models.compiler_moe.plan_moe``'s.

    Raises
    ------
    models.compiler.FitError
        The layer does not fit the SRAMs, the dispatch unit or HBM (before anything runs).
    RuntimeError
        A program failed, or (``check``) the result differs from ``moe_forward``.
    """
    _check_backend(backend, sim)
    cfg = resolve_config(config)
    plan = cm.plan_moe(cfg, problem, chunk_tiles=chunk_tiles, block_rows=block_rows)
    model = _moe.moe_forward(problem, inputs, weights)
    hbm = np.zeros(cfg.hbm.total_bytes, np.uint8)
    p1 = cm.routing_program(plan, inputs, weights)
    plan.addr["ring2"] = cm._align(plan.addr["ring1"] + (len(p1) + 1) * CMD_BYTES)
    if plan.addr["ring2"] > hbm.size:
        raise FitError(f"the MoE layer needs more than hbm.total_bytes = {hbm.size} bytes "
                       f"of HBM (weights {2 * problem.experts * problem.d_model * problem.d_ff})")
    cm.pack_hbm(plan, inputs, weights, hbm)
    a = plan.addr
    job1, _ = _ring_job(cfg, hbm, a["ring1"], p1, (a["rank"], a["y"] - a["rank"]))
    res1, rtl1 = _run(cfg, job1, backend, sim, seed, "program 1 (routing)", verilator_opt,
                      policy)
    counts = cm.read_counts(plan, res1.hbm)
    placement = cm.place(plan, counts, split=split)
    p2 = cm.experts_program(plan, inputs, weights, placement)
    need = cm.hbm_needed(plan, len(p2))
    if need > hbm.size:
        raise FitError(f"the MoE layer needs {need} bytes of HBM (program 2: {len(p2)} "
                       f"commands), hbm.total_bytes is {hbm.size}")
    hbm2 = res1.hbm.copy()
    job2, _ = _ring_job(cfg, hbm2, a["ring2"], p2, (a["y"], a["ring1"] - a["y"]))
    res2, rtl2 = _run(cfg, job2, backend, sim, seed, "program 2 (experts, combine)",
                      verilator_opt, policy)
    chip = cm.read_results(plan, res2.hbm)
    if check:
        bad = compare(model, chip, plan)
        if bad:
            raise RuntimeError(f"the MoE layer on {backend} differs from "
                               f"models.moe.moe_forward in: {', '.join(bad)}")
    cycles = (rtl1.cycles, rtl2.cycles) if backend == "rtl" else None
    return MoeRun(model, chip, plan, placement, (p1, p2), (res1, res2), backend, cycles,
                  (rtl1, rtl2) if backend == "rtl" else None)


@dataclass(frozen=True)
class MoeRtlResult(_moe.MoeResult):
    """``moe_layer(..., backend="rtl")``: the :class:`models.moe.MoeResult` (the chip's
    bits equal the model's: checked) plus the run: ``cycles`` (program 1 + program 2),
    ``cycles_routing``, ``cycles_experts`` and ``run`` (:class:`MoeRun`)."""

    cycles: int = 0
    cycles_routing: int = 0
    cycles_experts: int = 0
    run: MoeRun | None = None


def moe_layer_rtl(problem: _moe.MoeProblem, inputs: _moe.MoeInput, weights: _moe.MoeWeights,
                  *, config="tiny", sim: str = "verilator", seed: int | None = None,
                  split: bool = True) -> MoeRtlResult:
    """``models.moe.moe_layer``'s ``backend="rtl"``: the layer on the SoC RTL (two
    simulator runs), checked bit for bit against ``moe_forward``."""
    run = run_moe(problem, inputs, weights, config=config, backend="rtl", sim=sim,
                  seed=seed, split=split)
    m = run.model
    return MoeRtlResult(m.problem, m.inputs, m.weights, m.routing, m.dispatch, m.y, m.out,
                        run.total_cycles, run.cycles[0], run.cycles[1], run)
