"""Descriptor generators shared by the cocotb tests, the pyuvm sequences and the bench."""
from __future__ import annotations

from models import dma as model
from models.dma import DmaDir

__all__ = ["random_descriptor", "same_lane", "random_indexed", "index_bytes"]


def same_lane(rng, target_mod: int, lo: int, W: int) -> int:
    """A value >= lo that is congruent to ``target_mod`` modulo W."""
    v = lo + (target_mod - lo) % W
    return v + W * rng.randint(0, 2)


def random_descriptor(rng, W: int, hbm_size: int, sram_size: int, *, dims: int | None = None,
                      max_row: int = 300, dir: int | None = None, tag: int = 0,
                      align: str | None = None) -> model.Descriptor:
    """A legal descriptor (same byte lane on both sides) that fits both memories."""
    dims = dims or rng.choice([1, 1, 2, 2, 3])
    dir = rng.choice([DmaDir.LOAD, DmaDir.STORE]) if dir is None else dir
    row = rng.choice([1, 2, W - 1, W, W + 1, 2 * W, rng.randint(1, max_row), max_row])
    rows = 1 if dims == 1 else rng.randint(2, 5)
    planes = 1 if dims < 3 else rng.randint(2, 3)
    a_ys = rng.choice([row, row + rng.randint(0, 3 * W), 4096 - rng.randint(0, 64)])
    a_ys = max(a_ys, row) if rows > 1 else 0
    s_ys = same_lane(rng, a_ys % W, row, W) if rows > 1 else 0
    a_zs = (rows * max(a_ys, row) + rng.randint(0, 2 * W)) if planes > 1 else 0
    s_zs = same_lane(rng, a_zs % W, rows * max(s_ys, row), W) if planes > 1 else 0
    a_ext = (planes - 1) * a_zs + (rows - 1) * a_ys + row
    s_ext = (planes - 1) * s_zs + (rows - 1) * s_ys + row
    if a_ext + 2 * W > hbm_size or s_ext + 2 * W > sram_size:
        return random_descriptor(rng, W, hbm_size, sram_size, dims=1, max_row=max_row, dir=dir,
                                 tag=tag, align=align)
    lines = (hbm_size - a_ext) // 4096    # 4 KiB lines k with k*4096 - 1 + a_ext in range
    if align == "4k" and lines >= 1:      # start just below a 4 KiB line: bursts must split
        a = rng.randrange(1, lines + 1) * 4096 - rng.randint(1, 3 * W)
    else:
        a = rng.randrange(0, hbm_size - a_ext)
    s = rng.randrange(0, (sram_size - s_ext) // W) * W + a % W
    if s + s_ext > sram_size:
        s -= W
    if dir == DmaDir.LOAD:
        return model.Descriptor(dir, a, s, row, rows, planes, a_ys, s_ys, a_zs, s_zs, tag)
    return model.Descriptor(dir, s, a, row, rows, planes, s_ys, a_ys, s_zs, a_zs, tag)


def random_indexed(rng, W: int, hbm_size: int, sram_size: int, *, dir: int | None = None,
                   tag: int = 0, max_planes: int = 8, max_row: int = 200,
                   bad_plane: int | None = None) -> tuple[model.Descriptor, list[int]]:
    """A legal indexed descriptor (``index = 1``) and its index list.

    The AXI planes live in the lower half of ``[0, hbm_size)``, the index list (which the
    caller writes at ``desc.index_addr``, little-endian uint32) in the upper half, so a
    STORE never overwrites its own list. LOAD indices may repeat; STORE indices too (the
    later plane wins). ``bad_plane``: that plane's index points past ``hbm_size`` (the
    copy must stop there with WINDOW when the window is ``[0, hbm_size)``).
    """
    dir = rng.choice([DmaDir.LOAD, DmaDir.STORE]) if dir is None else dir
    row = rng.choice([1, 3, W - 1, W, W + 1, 2 * W, rng.randint(1, max_row)])
    rows = rng.choice([1, 1, 2, 3])
    planes = rng.randint(1, max_planes)
    a_ys = (row + rng.randint(0, 2 * W)) if rows > 1 else 0
    s_ys = same_lane(rng, a_ys % W, row, W) if rows > 1 else 0
    plane = (rows - 1) * a_ys + row                  # AXI bytes of one plane
    a_zs = W * rng.choice([(plane + W - 1) // W, rng.randint(1, (plane + W - 1) // W + 3)])
    s_zs = W * ((rows - 1) * s_ys // W + row // W + 1 + rng.randint(0, 1))
    half = hbm_size // 2
    a = rng.randrange(0, 3 * W)
    slots = (half - a - plane) // a_zs + 1
    s_ext = (planes - 1) * s_zs + (rows - 1) * s_ys + row
    if slots < 1 or s_ext + 2 * W > sram_size or planes * row * rows > 1 << 16:
        return random_indexed(rng, W, hbm_size, sram_size, dir=dir, tag=tag,
                              max_planes=max_planes, max_row=max_row, bad_plane=bad_plane)
    idx = [rng.randrange(slots) for _ in range(planes)]
    if bad_plane is not None and bad_plane < planes:
        idx[bad_plane] = (hbm_size - a) // a_zs + 1 + rng.randint(0, 3)  # past the window
        if rng.random() < 0.25:
            idx[bad_plane] = (1 << 32) - 1 - rng.randint(0, 3)            # past 2**32 too
    s = rng.randrange(0, (sram_size - s_ext) // W) * W + a % W
    if s + s_ext > sram_size:
        s -= W
    ia = half + 4 * rng.randrange(0, (half - 4 * planes) // 4)
    kw = {"tag": tag, "index": 1, "index_addr": ia}
    if dir == DmaDir.LOAD:
        d = model.Descriptor(dir, a, s, row, rows, planes, a_ys, s_ys, a_zs, s_zs, **kw)
    else:
        d = model.Descriptor(dir, s, a, row, rows, planes, s_ys, a_ys, s_zs, a_zs, **kw)
    return d, idx


def index_bytes(idx: list[int]) -> bytes:
    """An index list's memory image (little-endian uint32 each)."""
    return b"".join(int(i).to_bytes(model.INDEX_BYTES, "little") for i in idx)
