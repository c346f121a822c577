"""Test-only DUT that never finishes, to prove that no test can hang the regression."""
