"""Time constants shared by the runner (no simulator needed) and the testbenches.

Importing this module imports no cocotb, so :mod:`tb.runner`, pytest's controller and
the scripts can read the clock period and the wall-clock limits without a simulator.
"""
from __future__ import annotations

import os

__all__ = ["CLOCK_NS", "WALL_LIMIT_S", "BUILD_LIMIT_S", "wall_limit", "build_limit"]

CLOCK_NS = 10
"""Period of every testbench clock (``ClockedTB``), and cycles = sim time / CLOCK_NS."""

WALL_LIMIT_S = {"smoke": 600, "full": 1200, "nightly": 3600}
"""Default wall-clock limit of one simulator run (one cocotb module) per tier. The goal
for ``make test`` is 30 min on 2 cores in total, so a run that needs more than its tier's
limit is a hang or a budget problem; a long test raises its own (``wall_limit_s=``)."""

BUILD_LIMIT_S = 2400
"""Default wall-clock limit of one Verilog/Verilator build (large -Os builds take > 20 min)."""


def _env_seconds(name: str) -> float | None:
    text = os.environ.get(name, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {text!r}") from None
    if value <= 0:
        raise ValueError(f"{name} must be > 0, got {text!r}")
    return value


def wall_limit(tier: str = "full") -> float:
    """Wall-clock limit (s) of one simulator run: ``JALAPENO_WALL_LIMIT`` if set, else
    the tier's default (:data:`WALL_LIMIT_S`)."""
    env = _env_seconds("JALAPENO_WALL_LIMIT")
    if env is not None:
        return env
    if tier not in WALL_LIMIT_S:
        raise ValueError(f"tier must be one of {sorted(WALL_LIMIT_S)}, got {tier!r}")
    return float(WALL_LIMIT_S[tier])


def build_limit() -> float:
    """Wall-clock limit (s) of one build: ``JALAPENO_BUILD_LIMIT`` or :data:`BUILD_LIMIT_S`."""
    env = _env_seconds("JALAPENO_BUILD_LIMIT")
    return env if env is not None else float(BUILD_LIMIT_S)
