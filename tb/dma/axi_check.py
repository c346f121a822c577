"""The DMA engine's manager-side AXI checker now lives with the subordinate-side one in
:mod:`tb.common.axi_check` (one rule implementation); this name stays for its users."""
from tb.common.axi_check import AxiProtocolChecker

__all__ = ["AxiProtocolChecker"]
