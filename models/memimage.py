"""Memory images of the formats software writes into memory for the hardware to fetch.

A :class:`MemoryImage` is a table of ``(field, byte offset, bit offset, bits)``: the
image is a whole number of little-endian 32-bit words, a field lives in the word at
``byte offset`` (a multiple of 4) at bits ``bit offset .. bit offset + bits - 1`` and
never straddles two words, so C code reads it as ``(word >> shift) & mask``. Bits that
no field covers are reserved: written 0, ignored when read. The table is checked on
construction (alignment, overlaps, widths equal to the format's field table), and
scripts/gen_headers.py writes the same table into the C header.

Used by :class:`models.dma.Descriptor` and :class:`models.tensor_cmd.TensorCmd`.
Pure Python (no numpy, no Amaranth).
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ImageField", "MemoryImage", "check_widths"]


def check_widths(owner: str, obj, field_bits: dict[str, int]) -> None:
    """Raise ``ValueError`` naming ``owner.field`` unless every field of ``obj`` named in
    ``field_bits`` is an int (not a bool) in ``[0, 2**bits)``: the construction check of
    every record with a memory image (DMA descriptor, tensor command, ISA command,
    dispatch descriptor)."""
    for name, bits in field_bits.items():
        v = getattr(obj, name)
        if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 1 << bits:
            raise ValueError(f"{owner}.{name} must be an int in [0, 2**{bits}), got {v!r}")


@dataclass(frozen=True)
class ImageField:
    """One row of an image table."""

    name: str
    offset: int         # byte offset of the 32-bit word holding the field (multiple of 4)
    shift: int          # bit offset of the field's LSB inside that little-endian word
    bits: int

    @property
    def mask(self) -> int:
        """Mask of the field after shifting it down (``(1 << bits) - 1``)."""
        return (1 << self.bits) - 1


class MemoryImage:
    """A word-aligned little-endian memory image.

    Parameters
    ----------
    name : str
        Format name (C prefix in the generated header, e.g. ``dma_desc``).
    size : int
        Bytes of one image: a multiple of 8 (fetchable as whole 32- or 64-bit words).
    fields : sequence of (name, byte offset, bit offset, bits)
    field_bits : dict of str to int
        The format's own field table: the image must hold exactly these fields, each
        with exactly these bits.

    Raises
    ------
    ValueError
        If the table breaks a rule above (the message names the field).
    """

    def __init__(self, name: str, size: int, fields, field_bits: dict[str, int]):
        if size <= 0 or size % 8:
            raise ValueError(f"{name}: image size must be a positive multiple of 8, got {size}")
        self.name, self.size = name, size
        self.fields = tuple(ImageField(*f) for f in fields)
        used: dict[int, int] = {}
        for f in self.fields:
            if f.offset % 4 or not 0 <= f.offset <= size - 4:
                raise ValueError(f"{name}.{f.name}: byte offset {f.offset} is not a word "
                                 f"inside the {size}-byte image")
            if f.bits < 1 or f.shift < 0 or f.shift + f.bits > 32:
                raise ValueError(f"{name}.{f.name}: bits {f.shift}..{f.shift + f.bits - 1} "
                                 f"leave the 32-bit word")
            if field_bits.get(f.name) != f.bits:
                raise ValueError(f"{name}.{f.name}: {f.bits} bits in the image, "
                                 f"{field_bits.get(f.name)} in the format")
            bits = f.mask << f.shift
            if used.get(f.offset, 0) & bits:
                raise ValueError(f"{name}.{f.name} overlaps another field")
            used[f.offset] = used.get(f.offset, 0) | bits
        missing = set(field_bits) - {f.name for f in self.fields}
        if missing or len(self.fields) != len(field_bits):
            raise ValueError(f"{name}: image fields differ from the format: missing "
                             f"{sorted(missing)}, {len(self.fields)} rows for "
                             f"{len(field_bits)} fields")

    def __iter__(self):
        return iter(self.fields)

    def pack(self, values: dict[str, int]) -> bytes:
        """The image of ``values`` (every field; reserved bits 0).

        Raises ``ValueError`` if a value is not an int that fits its field."""
        words = [0] * (self.size // 4)
        for f in self.fields:
            v = values[f.name]
            if isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= f.mask:
                raise ValueError(f"{self.name}.{f.name} must be an int in "
                                 f"[0, 2**{f.bits}), got {v!r}")
            words[f.offset // 4] |= int(v) << f.shift
        return b"".join(w.to_bytes(4, "little") for w in words)

    def unpack(self, data: bytes) -> dict[str, int]:
        """Field values of an image (reserved bits ignored).

        Raises ``ValueError`` if ``data`` is not exactly one image long."""
        data = bytes(data)
        if len(data) != self.size:
            raise ValueError(f"{self.name}: an image is {self.size} bytes, got {len(data)}")
        return {f.name: int.from_bytes(data[f.offset:f.offset + 4], "little") >> f.shift
                & f.mask for f in self.fields}
