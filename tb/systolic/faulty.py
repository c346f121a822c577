"""Test-only variant of the array with one broken PE, to prove the checking catches it."""
from amaranth import Module, Mux, Signal, signed

from models.config import JalapenoConfig
from rtl.systolic.array import SystolicArray
from rtl.systolic.pe import ProcessingElement

__all__ = ["FaultyPE", "FaultySystolicArray", "faulty_systolic_array"]


class FaultyPE(ProcessingElement):
    """A PE whose adder drops bit 0 of the product (wrong whenever a * w is odd)."""

    def elaborate(self, platform):
        m = Module()
        active = Signal(signed(8))
        shadow = Signal(signed(8))
        weight = Mux(self.swap_in, shadow, active)
        product = Signal(signed(16))
        m.d.comb += product.eq(self.a_in * weight)
        with m.If(self.en):
            m.d.sync += [
                self.a_out.eq(self.a_in),
                self.swap_out.eq(self.swap_in),
                self.p_out.eq(self.p_in + (product & ~1)),   # the injected fault
            ]
            if self._fp8:      # INT8 only, but forwards the tile mode like a real PE
                m.d.sync += self.mode_out.eq(self.mode_in)
            with m.If(self.swap_in):
                m.d.sync += active.eq(shadow)
            with m.If(self.w_we):
                m.d.sync += shadow.eq(self.w_data)
        return m


class FaultySystolicArray(SystolicArray):
    """The real array with PE (R//2, C//2) replaced by :class:`FaultyPE`."""

    def make_pe(self, row, col):
        if (row, col) == (self.config.rows // 2, self.config.cols // 2):
            return FaultyPE(self.config)
        return super().make_pe(row, col)


def faulty_systolic_array(cfg: JalapenoConfig) -> FaultySystolicArray:
    return FaultySystolicArray(cfg.systolic)
