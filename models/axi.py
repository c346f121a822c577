"""AXI4 / AXI4-Lite encodings shared by the RTL (rtl/lib/axi.py), the golden models and
the testbenches. numpy-free, Amaranth-free."""
from __future__ import annotations

import enum

__all__ = ["Resp", "Burst", "LEN_BITS", "SIZE_BITS", "BURST_BITS", "RESP_BITS",
           "MAX_BURST_BEATS", "BOUNDARY_BYTES"]

LEN_BITS, SIZE_BITS, BURST_BITS, RESP_BITS = 8, 3, 2, 2
#: AxLEN + 1 of an INCR burst (AXI4).
MAX_BURST_BEATS = 256
#: No burst may cross a multiple of this many bytes (the AXI 4 KiB rule).
BOUNDARY_BYTES = 4096


class Resp(enum.IntEnum):
    """xRESP codes."""

    OKAY = 0
    EXOKAY = 1
    SLVERR = 2
    DECERR = 3


class Burst(enum.IntEnum):
    """AxBURST codes (WRAP is legal AXI but answered SLVERR by the HBM stub)."""

    FIXED = 0
    INCR = 1
    WRAP = 2
