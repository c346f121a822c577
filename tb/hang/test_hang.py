"""cocotb tests that hang on :class:`tb.hang.dut.HangDut` (run by tests/sim/test_hang_sim.py).

Each is expected to FAIL: the bounded ones with a message naming what they waited for,
``test_unbounded_wait`` by the runner's wall-clock watchdog killing the simulator.
"""
import cocotb
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge

from tb.common.clocked import CLOCK_NS, ClockedTB, bounded
from tb.common.stream import StreamSource, signal_int


@cocotb.test()
async def test_bounded_wait_until(dut):
    """ClockedTB.wait_until: a command the DUT never accepts."""
    tb = ClockedTB(dut)
    src = tb.add(StreamSource(dut, "i_cmd", 8))
    await tb.reset()
    src.send(0x5A)
    await tb.wait_until(lambda: src.idle, timeout=200, what="i_cmd to accept a command")


@cocotb.test()
async def test_bounded_trigger(dut):
    """tb.common.clocked.bounded around a trigger: o_idle never rises."""
    tb = ClockedTB(dut)
    await tb.reset()
    await bounded(RisingEdge(dut.o_idle), cycles=300, what="o_idle to rise")


@cocotb.test()
async def test_unbounded_wait(dut):
    """No bound at all: the clock runs, simulated time advances, o_idle never rises.
    Only the runner's wall-clock limit ends this."""
    Clock(dut.clk, CLOCK_NS, unit="ns").start()
    dut.rst.value = 0
    dut.i_cmd__valid.value = 0
    await RisingEdge(dut.o_idle)
    assert signal_int(dut.o_idle), "unreachable: o_idle is constant 0"
