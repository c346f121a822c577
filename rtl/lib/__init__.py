"""The project's small RTL library: every block builds its plumbing from these.

=================  =================================================================
``stream.Queue``   the one FIFO (a stream queue over ``amaranth.lib.fifo.SyncFIFO``)
``axi``            AXI4 and AXI4-Lite bus signatures (``wiring.connect``-able, arrays)
``mux.select``     Icarus-safe N:1 multiplexer (continuous assigns, no ``always @*``)
``arbiter``        round-robin arbiter
``shared``         one Verilog module for many identical instances (emit once)
``verilog``        Verilog emission of a top level and every shared module under it
=================  =================================================================

SRAM ports are ``amaranth.lib.memory``'s own signatures, seen from the initiator:
``In(memory.ReadPort.Signature(addr_width=..., shape=...))`` and
``In(memory.WritePort.Signature(addr_width=..., shape=..., granularity=...))``
(``In`` flips them, so ``addr``/``en`` are outputs of the block that issues them);
the block that owns the memory ``wiring.connect``\\ s them to the real ports.
docs/adding_a_block.md has the rules.
"""
