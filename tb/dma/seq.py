"""Descriptor generators shared by the cocotb tests, the pyuvm sequences and the bench."""
from __future__ import annotations

from models import dma as model
from models.dma import DmaDir

__all__ = ["random_descriptor", "same_lane"]


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
