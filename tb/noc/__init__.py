"""Testbenches of the network-on-chip (docs/noc.md, test plan)."""
