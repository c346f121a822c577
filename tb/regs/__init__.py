"""Testbench of the host register block (rtl/regs): model, TB, cocotb tests."""
