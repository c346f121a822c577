"""Out-of-context synthesis helpers for ``make synth`` (scripts/synth.py): the registered
I/O wrapper around a block and the reference MACs that calibrate the table."""
