"""cocotb test run on a tensor core with a corrupting result writer (tb/tensor/faulty.py):
the SRAM check must fail loudly."""
import cocotb

from models.tensor_cmd import TensorCmd
from models.tensor_core import MEM_ACC, MEM_ACT, MEM_WEIGHT
from tb.tensor.faulty import FAULT_ROW
from tb.tensor.tb import TensorCoreTB


async def _expect_mismatch(tb, what):
    try:
        await tb.check_mem(MEM_ACC, 0, 2 * FAULT_ROW, what)
    except AssertionError as e:
        tb.log.info("caught: %s", e)
    else:
        raise AssertionError(f"{what}: check_mem passed")


@cocotb.test()
async def test_broken_writer_is_reported(dut):
    """GEMM rows 0..2*FAULT_ROW-1 on a core that corrupts word FAULT_ROW."""
    tb = TensorCoreTB(dut)
    await tb.reset()
    await tb.fill_random(MEM_ACT, 0, 2 * FAULT_ROW)
    await tb.fill_random(MEM_WEIGHT, 0, tb.R)
    await tb.fill_random(MEM_ACC, 0, 2 * FAULT_ROW)
    await tb.run([TensorCmd.matmul(src=0, w=0, dst=0, m=2 * FAULT_ROW)])
    await _expect_mismatch(tb, "broken result writer")
    tb.finish()
