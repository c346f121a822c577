"""Pack and unpack stream payloads using the RTL's own Amaranth layouts.

Amaranth flattens a payload into one vector, fields LSB first; these helpers read the
offsets from the same ``data.Layout`` object the RTL used, so a testbench cannot get a
field position wrong when a layout changes.

Values: a plain shape packs an int; an ``ArrayLayout`` packs a sequence (or numpy
array) of element values; a ``StructLayout`` packs a dict (missing fields are 0).
``unpack`` returns the same kinds (arrays of 8/16/32/64-bit elements come back as numpy).

The layout is compiled once into closures (:func:`packer`), because the testbench packs
a payload every cycle and Amaranth's shape introspection is slow in a hot loop.
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Shape
from amaranth.lib import data

__all__ = ["pack", "unpack", "width", "packer"]

_NP = {(8, True): np.int8, (16, True): np.int16, (32, True): np.int32, (64, True): np.int64,
       (8, False): np.uint8, (16, False): np.uint16, (32, False): np.uint32,
       (64, False): np.uint64}


def width(layout) -> int:
    """Width in bits of a shape or layout."""
    return Shape.cast(layout).width


def packer(layout):
    """``(pack, unpack)`` functions compiled for ``layout``; build once, call often."""
    if isinstance(layout, data.StructLayout):
        fields = [(name, f.offset, (1 << width(f.shape)) - 1, *packer(f.shape))
                  for name, f in layout]

        def pack_struct(value):
            out = 0
            for name, off, _, p, _u in fields:
                v = value.get(name)
                if v is not None:
                    out |= p(v) << off
            return out

        def unpack_struct(bits):
            return {name: u((bits >> off) & mask) for name, off, mask, _p, u in fields}
        return pack_struct, unpack_struct

    if isinstance(layout, data.ArrayLayout):
        n, elem = layout.length, layout.elem_shape
        ew = width(elem)
        if not isinstance(elem, data.Layout) and (ew, Shape.cast(elem).signed) in _NP:
            dt = _NP[ew, Shape.cast(elem).signed]
            nbytes = ew // 8 * n

            def pack_np(value):
                a = np.asarray(value)
                if a.shape != (n,):
                    raise ValueError(f"expected {n} elements, got shape {a.shape}")
                if a.dtype != dt:
                    if a.size and (a.min() < np.iinfo(dt).min or a.max() > np.iinfo(dt).max):
                        raise ValueError(f"values out of range for {elem}: {a}")
                    a = a.astype(dt)
                return int.from_bytes(a.tobytes(), "little")

            def unpack_np(bits):
                return np.frombuffer(bits.to_bytes(nbytes, "little"), dtype=dt)
            return pack_np, unpack_np
        p, u = packer(elem)
        mask = (1 << ew) - 1

        def pack_list(value):
            if len(value) != n:
                raise ValueError(f"expected {n} elements, got {len(value)}")
            out = 0
            for i, v in enumerate(value):
                out |= p(v) << (i * ew)
            return out

        def unpack_list(bits):
            return [u((bits >> (i * ew)) & mask) for i in range(n)]
        return pack_list, unpack_list

    shape = Shape.cast(layout)
    w, signed = shape.width, shape.signed
    lo = -(1 << (w - 1)) if signed else 0
    hi = (1 << (w - 1)) - 1 if signed else (1 << w) - 1
    mask = (1 << w) - 1

    def pack_int(value):
        v = int(value)
        if not lo <= v <= hi:
            raise ValueError(f"value {v} does not fit {shape}")
        return v & mask

    def unpack_int(bits):
        return bits - (1 << w) if signed and bits >> (w - 1) & 1 else bits
    return pack_int, unpack_int


def pack(layout, value) -> int:
    """Flatten ``value`` into the unsigned integer the RTL port carries."""
    return packer(layout)[0](value)


def unpack(layout, bits: int):
    """Inverse of :func:`pack` for the unsigned integer read from an RTL port."""
    return packer(layout)[1](bits)
