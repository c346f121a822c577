"""Pack and unpack stream payloads using the RTL's own Amaranth layouts.

Amaranth flattens a payload into one vector, fields LSB first; these helpers read the
offsets from the same ``data.Layout`` object the RTL used, so a testbench cannot get a
field position wrong when a layout changes.

Values: a plain shape packs an int; an ``ArrayLayout`` packs a sequence (or numpy
array) of element values; a ``StructLayout`` packs a dict (missing fields are 0).
``unpack`` returns the same kinds (arrays of integer elements come back as numpy).
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data

__all__ = ["pack", "unpack", "width"]

_NP_INT = {8: np.int8, 16: np.int16, 32: np.int32, 64: np.int64}
_NP_UINT = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}


def width(layout) -> int:
    """Width in bits of a shape or layout."""
    return Shape.cast(layout).width


def pack(layout, value) -> int:
    """Flatten ``value`` into the unsigned integer the RTL port carries."""
    if isinstance(layout, data.StructLayout):
        out = 0
        for name, field in layout:
            if name in value:
                out |= pack(field.shape, value[name]) << field.offset
        return out
    if isinstance(layout, data.ArrayLayout):
        ew = width(layout.elem_shape)
        if len(value) != layout.length:
            raise ValueError(f"expected {layout.length} elements, got {len(value)}")
        if ew in _NP_UINT and not isinstance(layout.elem_shape, data.Layout):
            raw = np.asarray(value).astype(_NP_INT[ew] if Shape.cast(layout.elem_shape).signed
                                           else _NP_UINT[ew]).tobytes()
            return int.from_bytes(raw, "little")
        out = 0
        for i, v in enumerate(value):
            out |= pack(layout.elem_shape, v) << (i * ew)
        return out
    shape = Shape.cast(layout)
    v = int(value)
    lo = -(1 << (shape.width - 1)) if shape.signed else 0
    hi = (1 << (shape.width - 1)) - 1 if shape.signed else (1 << shape.width) - 1
    if not lo <= v <= hi:
        raise ValueError(f"value {v} does not fit {shape}")
    return v & ((1 << shape.width) - 1)


def unpack(layout, bits: int):
    """Inverse of :func:`pack` for the unsigned integer read from an RTL port."""
    if isinstance(layout, data.StructLayout):
        return {name: unpack(field.shape, (bits >> field.offset) & ((1 << width(field.shape)) - 1))
                for name, field in layout}
    if isinstance(layout, data.ArrayLayout):
        ew = width(layout.elem_shape)
        if ew in _NP_UINT and not isinstance(layout.elem_shape, data.Layout):
            raw = int(bits).to_bytes(ew // 8 * layout.length, "little")
            dt = _NP_INT[ew] if Shape.cast(layout.elem_shape).signed else _NP_UINT[ew]
            return np.frombuffer(raw, dtype=dt).copy()
        mask = (1 << ew) - 1
        return [unpack(layout.elem_shape, (bits >> (i * ew)) & mask) for i in range(layout.length)]
    shape = Shape.cast(layout)
    if shape.signed and bits >> (shape.width - 1) & 1:
        return bits - (1 << shape.width)
    return bits
