"""The HBM backdoor port of ``rtl.mem.hbm.channel_backdoor`` (``i_bd_addr``, ``i_bd_wdata``,
``i_bd_we``, ``o_bd_rdata``: global byte addresses, whole words, one-cycle reads), driven
one word per cycle. Shared by the HBM stub's and the chip top's testbenches."""
from __future__ import annotations

from cocotb.triggers import FallingEdge

from tb.common.stream import signal_int

__all__ = ["backdoor_write", "backdoor_read"]


async def backdoor_write(dut, W: int, addr: int, data: bytes) -> None:
    """Write ``data`` (whole words of ``W`` bytes) from word-aligned ``addr``."""
    assert addr % W == 0 and len(data) % W == 0, "backdoor is word granular"
    for i in range(0, len(data), W):
        await FallingEdge(dut.clk)
        dut.i_bd_addr.value = addr + i
        dut.i_bd_wdata.value = int.from_bytes(data[i:i + W], "little")
        dut.i_bd_we.value = 1
    await FallingEdge(dut.clk)
    dut.i_bd_we.value = 0


async def backdoor_read(dut, W: int, addr: int, n: int) -> bytes:
    """Bytes ``[addr, addr + n)``, reading the whole words that hold them."""
    lo, hi = addr // W * W, -(-(addr + n) // W) * W
    out = bytearray()
    await FallingEdge(dut.clk)
    dut.i_bd_addr.value = lo
    for a in range(lo, hi, W):
        await FallingEdge(dut.clk)
        out += signal_int(dut.o_bd_rdata).to_bytes(W, "little")
        dut.i_bd_addr.value = a + W
    return bytes(out[addr - lo:addr - lo + n])
