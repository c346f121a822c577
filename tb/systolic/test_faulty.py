"""cocotb test run on FaultySystolicArray: the testbench must report the broken PE."""
import cocotb
import numpy as np

from tb.systolic.tb import SystolicTB


@cocotb.test()
async def test_broken_pe_is_reported(dut):
    """Random GEMMs on an array with one broken PE: both checks must fail loudly."""
    tb = SystolicTB(dut, stall=0.2)
    await tb.reset()
    R, C = tb.acfg.rows, tb.acfg.cols
    x = np.array([[tb.rng.randint(-128, 127) for _ in range(R)] for _ in range(2 * R)], np.int8)
    w = np.array([[tb.rng.randint(-128, 127) for _ in range(C)] for _ in range(R)], np.int8)
    x[:, R // 2] |= 1   # odd activations and weights through the broken PE: its
    w[R // 2, :] |= 1   # product is odd, so the dropped bit shows in every vector
    res = await tb.run_gemm(x, w)
    assert tb.sb.mismatches, "scoreboard saw no mismatch from a broken PE"
    try:
        tb.check_gemm(x, w, res)
    except AssertionError as e:
        tb.log.info("GEMM check caught the broken PE: %s", e)
    else:
        raise AssertionError("GEMM check passed on an array with a broken PE")
    tb.log.info("scoreboard reported %d mismatching vectors", len(tb.sb.mismatches))
