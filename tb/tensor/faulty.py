"""Test-only tensor core whose result writer corrupts one accumulator word, to prove the
tensor-core checking catches a wrong result."""
from amaranth import Module, Mux
from amaranth.lib import wiring

from models.config import JalapenoConfig
from rtl.tensor.core import TensorCore
from rtl.tensor.matmul import MatmulController

__all__ = ["FAULT_ROW", "FaultyMatmul", "faulty_tensor_core"]

#: Accumulator word whose lane-0 LSB the faulty writer flips on every write.
FAULT_ROW = 5


class FaultyMatmul(MatmulController):
    """The real controller (inside) with bit 0 of lane 0 flipped when writing FAULT_ROW."""

    def __init__(self, config: JalapenoConfig):
        super().__init__(config)
        self._inner = MatmulController(config)
        self.array._MustUse__silence = True      # the outer array is never used
        self.array = self._inner.array

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self._inner
        wiring.connect(m, wiring.flipped(self.i_cmd), inner.i_cmd)
        for port in ("act_rd", "wgt_rd", "acc_rd"):
            wiring.connect(m, wiring.flipped(getattr(self, port)), getattr(inner, port))
        m.d.comb += [
            self.busy.eq(inner.busy), self.act_fire.eq(inner.act_fire), self.done.eq(inner.done),
            self.acc_wr.en.eq(inner.acc_wr.en), self.acc_wr.addr.eq(inner.acc_wr.addr),
            self.acc_wr.data.eq(inner.acc_wr.data ^ Mux(inner.acc_wr.addr == FAULT_ROW, 1, 0)),
        ]
        return m


def faulty_tensor_core(cfg: JalapenoConfig) -> TensorCore:
    core = TensorCore(cfg)
    core.matmul._MustUse__silence = True
    core.matmul.array._MustUse__silence = True
    core.matmul = FaultyMatmul(cfg)
    return core
