"""Testbenches of the FP units (rtl/fp): test-only lane harnesses and cocotb tests."""
