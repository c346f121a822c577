"""The system level: AXI4 <-> NoC bridges and the test systems built from them."""
