"""Host registers: one SystemRDL description (jalapeno.rdl) -> RTL, C header, docs, TB model."""
