"""A fake MoE dispatch unit on the command processor's ``o_dispatch`` /
``i_dispatch_done`` (the DISPATCH tests of tb/cmdproc/test_cmdproc.py)."""
from __future__ import annotations

from rtl.soc.moe_dispatch import desc_layout, done_layout
from tb.common.packing import packer
from tb.common.stream import Pacer, signal_int

__all__ = ["FakeDispatch"]


class FakeDispatch:
    """The dispatch unit: one run at a time (ready while idle, random stalls), each
    completing ``latency`` cycles after its start with the next ``(err, kept, dropped)``
    of ``results``. A soft reset does not stop it (as the real unit)."""

    def __init__(self, tb):
        d = tb.dut
        self.tb = tb
        self.valid, self.ready = d.o_dispatch__valid, d.o_dispatch__ready
        self.payload = d.o_dispatch__payload
        self.dvalid, self.dready = d.i_dispatch_done__valid, d.i_dispatch_done__ready
        self.dpay = d.i_dispatch_done__payload
        self.unpack = packer(desc_layout())[1]
        self.pack = packer(done_layout())[0]
        self.pacer = Pacer(0.3, burst=3, rng=tb.rng)
        self.latency = (5, 30)
        self.results: list[tuple[int, int, int]] = []
        self.job = None             # [cycles left, result]
        self.starts: list[tuple[int, dict]] = []
        self.dones: list[int] = []
        self.ready.value = 0
        self.dvalid.value = 0
        self.dpay.value = 0

    def drive(self, cycle):
        self.ready.value = int(self.job is None and self.pacer())
        if self.job is not None and self.job[0] <= 0:
            err, kept, dropped = self.job[1]
            self.dvalid.value = 1
            self.dpay.value = self.pack({"err": err, "kept": kept, "dropped": dropped})
        else:
            self.dvalid.value = 0

    def sample(self, cycle):
        if self.job is not None:
            if self.job[0] <= 0 and signal_int(self.dvalid) and signal_int(self.dready):
                self.job = None
                self.dones.append(cycle)
            else:
                self.job[0] -= 1
        if signal_int(self.valid) and signal_int(self.ready):
            pay = {k: int(v) for k, v in self.unpack(signal_int(self.payload)).items()}
            self.starts.append((cycle, pay))
            self.job = [self.tb.rng.randint(*self.latency), self.results.pop(0)]
