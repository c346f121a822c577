"""Test-only variant of the array with one broken PE, to prove the checking catches it."""
from models.config import JalapenoConfig
from rtl.systolic.array import SystolicArray
from rtl.systolic.pe import ProcessingElement

__all__ = ["FaultyPE", "FaultySystolicArray", "faulty_systolic_array"]


class FaultyPE(ProcessingElement):
    """The real PE except that its INT8 product drops bit 0 (wrong whenever a * w is odd)."""

    def int8_product(self, a, w):
        return (a * w) & ~1     # the injected fault


class FaultySystolicArray(SystolicArray):
    """The real array with PE (R//2, C//2) replaced by :class:`FaultyPE`."""

    def make_pe(self, row, col):
        if (row, col) == (self.config.rows // 2, self.config.cols // 2):
            return FaultyPE(self.config)
        return super().make_pe(row, col)


def faulty_systolic_array(cfg: JalapenoConfig) -> FaultySystolicArray:
    return FaultySystolicArray(cfg.systolic)
