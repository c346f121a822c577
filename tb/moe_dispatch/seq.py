"""Random dispatch descriptors and rankings (shared by the model tests and the testbench)."""
from __future__ import annotations

import random

import numpy as np

from models import moe
from models.moe_dispatch import Descriptor

__all__ = ["random_desc", "random_ranking", "put_ranking"]


def random_desc(rng: random.Random, config, **kw) -> Descriptor:
    """A legal descriptor of ``config`` with random shape, policy and capacity (1..T+1),
    the ranking rows 4-aligned and the tables one after another; ``kw`` overrides."""
    soc = config.soc
    T = kw.pop("tokens", rng.randint(1, soc.dispatch_tokens))
    E = kw.pop("experts", rng.randint(1, soc.dispatch_experts))
    k = kw.pop("top_k", rng.randint(1, min(E, moe.MAX_TOP_K)))
    stride = kw.pop("rank_stride", 4 * rng.randint((E + 3) // 4, (E + 3) // 4 + 2))
    rank = kw.pop("rank_addr", 4 * rng.randint(0, 64))
    slot = rank + T * stride + 4 * rng.randint(0, 4)
    st = slot + 4 * T * k + 4 * rng.randint(0, 4)
    counts = st + 4 * T * k + 4 * rng.randint(0, 4)
    f = dict(tokens=T, experts=E, top_k=k, policy=rng.randint(0, 1),
             capacity=rng.randint(1, T + 1), rank_stride=stride, rank_addr=rank,
             slot_addr=slot, slot_token_addr=st, counts_addr=counts,
             drop_slot=rng.choice([0, T * k, 0xFFFF_FFFF]))
    f.update(kw)
    return Descriptor(**f)


def random_ranking(rng: np.random.Generator, T: int, E: int, hot: int | None = None):
    """Random permutations (T, E); with ``hot``, ~70 % of the tokens rank that expert
    first (its capacity overflows: drop and reroute both happen)."""
    r = np.argsort(rng.random((T, E)), axis=1)
    if hot is not None:
        for t in range(T):
            if rng.random() < 0.7:
                r[t] = [hot] + [e for e in r[t] if e != hot]
    return r.astype(np.int64)


def put_ranking(hbm, d: Descriptor, ranking) -> None:
    """Write the ranking rows of ``d`` into a uint8 image (bytes between rows unchanged)."""
    for t in range(d.tokens):
        a = d.rank_addr + t * d.rank_stride
        hbm[a:a + d.experts] = np.asarray(ranking[t]).astype(np.uint8)
