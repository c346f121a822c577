"""pyuvm tests of the chip top (``soc``): :mod:`tb.soc.uvm` (env, sequences) and
:mod:`tb.soc.seq` (race-free random programs). Every expected value comes from
``models.chip.ChipModel``; while a program runs the tests only await the interrupt.

Run: ``PYTHONPATH=. .venv/bin/python -m pytest tests/sim/test_soc_uvm_sim.py -n 0 --sim icarus``
or one test: ``make sim TEST=SocBadInputTest``.
"""
from __future__ import annotations

import cocotb
import numpy as np
import pyuvm
from pyuvm import ConfigDB, uvm_test

from models.isa import IsaError
from tb.common.clocked import run_seed, tier, trials
from tb.soc.uvm import (BadInputSeq, HardResetSeq, RandomSeq, RingDecerrSeq, ScrubSeq,
                        SocEnv, SocUvmTB, SoftResetSeq)

#: opcode x queue x token-flag bins a random test must hit (of 38 reachable), per tier
MIN_CROSS = {"smoke": 16, "full": 26, "nightly": 34}


class _SocTest(uvm_test):
    min_cross = 0
    need_errors = ()

    def build_phase(self):
        self.tb = SocUvmTB(cocotb.top)
        ConfigDB().set(None, "*", "TB", self.tb)
        self.env = SocEnv("env", self)

    async def start(self):
        tb = self.tb
        tb.log.info("%s: run seed %d (SEED=), test seed %d, tier %s", type(self).__name__,
                    run_seed(), tb.seed, tier())
        await tb.hard_reset()
        # HBM keeps what earlier tests left: write all of it (random), the mirror is exact
        img = np.frombuffer(tb.rng.randbytes(tb.config.hbm.total_bytes), np.uint8).copy()
        await tb.bd_write(0, img.tobytes())
        tb.mirror = img
        await ScrubSeq("scrub").start(self.env.seqr)     # SRAMs from earlier tests


@pyuvm.test()
class SocRandomTest(_SocTest):
    """Random race-free programs (loads/stores/MATMULs/SYNCs chained by tokens, barriers
    on random masks, fences, NOPs, IRQ) vs ChipModel; opcode x queue x flags coverage."""

    min_cross = MIN_CROSS[tier()]

    async def run_phase(self):
        self.raise_objection()
        await self.start()
        await RandomSeq("random", n=trials(1), size=(30, 50)).start(self.env.seqr)
        self.drop_objection()


@pyuvm.test()
class SocBadInputTest(_SocTest):
    """Every bad input ends with the error bit + interrupt (never a hang) and matches
    ChipModel: each check error, token overflow, a wait never signalled (WATCHDOG), a ring
    fetch from an address no channel owns (DMA_FAULT/DECERR); soft reset in the middle of
    a program and the rst pin in the middle of traffic, each followed by a checked program."""

    need_errors = tuple(e.name for e in IsaError)

    async def run_phase(self):
        self.raise_objection()
        await self.start()
        await BadInputSeq("bad").start(self.env.seqr)
        await RingDecerrSeq("decerr").start(self.env.seqr)
        await SoftResetSeq("soft").start(self.env.seqr)
        await HardResetSeq("hard").start(self.env.seqr)
        self.drop_objection()
