"""Testbenches of the vector unit (rtl/vector) and its FP helpers (rtl/fp/fp32_mul.py)."""
