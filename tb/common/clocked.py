"""Base testbench: clock, reset, the per-cycle agent loop, run settings and statistics.

Run settings come from the environment the runner (:mod:`tb.runner`) sets:

``JALAPENO_CONFIG``
    The JSON of the :class:`models.config.JalapenoConfig` the DUT was built from.
``JALAPENO_TIER``
    ``smoke``, ``full`` or ``nightly``: how many random trials a test runs.
``COCOTB_RANDOM_SEED``
    The seed (cocotb logs it at start; ``make sim SEED=n`` re-runs it).
"""
from __future__ import annotations

import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge, SimTimeoutError, with_timeout

from models.config import JalapenoConfig, get_preset
from tb.common.timing import CLOCK_NS   # one definition, shared with tb.runner

__all__ = ["ClockedTB", "run_config", "tier", "trials", "bounded", "run_seed", "CLOCK_NS"]
_TIER_SCALE = {"smoke": 1, "full": 4, "nightly": 20}


def run_config() -> JalapenoConfig:
    """The config the DUT was built from (``default`` preset when run by hand)."""
    text = os.environ.get("JALAPENO_CONFIG")
    return JalapenoConfig.from_json(text) if text else get_preset("default")


def tier() -> str:
    t = os.environ.get("JALAPENO_TIER", "full")
    if t not in _TIER_SCALE:
        raise ValueError(f"JALAPENO_TIER must be one of {sorted(_TIER_SCALE)}, got {t!r}")
    return t


def trials(smoke: int) -> int:
    """Number of random trials: ``smoke`` in the smoke tier, scaled up in the others."""
    return smoke * _TIER_SCALE[tier()]


async def bounded(awaitable, *, cycles: int, what: str):
    """Await ``awaitable`` (a coroutine, task or trigger, e.g. a cocotbext-axi read) for at
    most ``cycles`` clock periods; past that raise ``AssertionError`` naming ``what``.

    Every wait of a testbench goes through this, :meth:`ClockedTB.wait_until` or a
    ``with_timeout`` of its own: a DUT that never answers fails the test, never hangs it.
    """
    try:
        return await with_timeout(awaitable, cycles * CLOCK_NS, "ns")
    except SimTimeoutError:
        raise AssertionError(f"timeout after {cycles} cycles waiting for {what} "
                             f"(run seed {run_seed()})") from None


def run_seed() -> int:
    """The seed of the whole run (``COCOTB_RANDOM_SEED``, what ``make sim SEED=`` takes);
    ``cocotb.RANDOM_SEED`` inside a test is derived from it and the test's name."""
    text = os.environ.get("COCOTB_RANDOM_SEED", "")
    return int(text) if text.isdigit() else cocotb.RANDOM_SEED


class ClockedTB:
    """Owns clock, reset and the cycle loop that ticks every registered agent.

    Parameters
    ----------
    dut : cocotb handle
        Top level with ``clk`` and ``rst`` (Amaranth's sync domain, active-high reset).
    name : str
        Used for the statistics record.
    """

    def __init__(self, dut, name: str | None = None):
        self.dut = dut
        self.log = dut._log
        self.name = name or cocotb.top._name
        self.config = run_config()
        self.seed = cocotb.RANDOM_SEED
        self.rng = random.Random(self.seed)
        self.cycle = 0
        self.agents: list = []
        self._loop_task = None
        Clock(dut.clk, CLOCK_NS, unit="ns").start()

    def add(self, agent):
        self.agents.append(agent)
        return agent

    async def reset(self, cycles: int = 3) -> None:
        """Synchronous reset for ``cycles`` clocks, then start the agent loop."""
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, cycles)
        await FallingEdge(self.dut.clk)
        self.dut.rst.value = 0
        if self._loop_task is None:
            self._loop_task = cocotb.start_soon(self._loop())

    async def _loop(self) -> None:
        clk = self.dut.clk
        agents = self.agents
        while True:
            for a in agents:
                a.drive(self.cycle)
            await ReadOnly()
            for a in agents:
                a.sample(self.cycle)
            self.cycle += 1
            await FallingEdge(clk)

    async def wait_until(self, cond, *, timeout: int, what: str) -> None:
        """Wait (checking every cycle) until ``cond()``; fail after ``timeout`` cycles."""
        start = self.cycle
        while not cond():
            if self.cycle - start > timeout:
                raise AssertionError(f"timeout after {timeout} cycles waiting for {what} "
                                     f"(cycle {self.cycle}, run seed {run_seed()})")
            await RisingEdge(self.dut.clk)
