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


class FaultyMatmul(wiring.Component):
    """The real controller (inside, same signature) with bit 0 of lane 0 flipped when
    writing FAULT_ROW."""

    def __init__(self, config: JalapenoConfig):
        self._inner = MatmulController(config)
        super().__init__(self._inner.signature)

    def elaborate(self, platform):
        m = Module()
        m.submodules.inner = inner = self._inner
        for name in ("i_cmd", "m_act_rd", "m_wgt_rd", "m_acc_rd"):
            wiring.connect(m, wiring.flipped(getattr(self, name)), getattr(inner, name))
        m.d.comb += [
            self.o_busy.eq(inner.o_busy), self.o_act_fire.eq(inner.o_act_fire),
            self.o_done.eq(inner.o_done),
            self.m_acc_wr.en.eq(inner.m_acc_wr.en), self.m_acc_wr.addr.eq(inner.m_acc_wr.addr),
            self.m_acc_wr.data.eq(inner.m_acc_wr.data
                                  ^ Mux(inner.m_acc_wr.addr == FAULT_ROW, 1, 0)),
        ]
        return m


def faulty_tensor_core(cfg: JalapenoConfig) -> TensorCore:
    """Runner factory: a tensor core built with :class:`FaultyMatmul`."""
    return TensorCore(cfg, matmul=FaultyMatmul)
