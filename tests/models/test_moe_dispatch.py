"""models.moe_dispatch: descriptor image, checks, execute against models.moe.dispatch and an
independent admission loop, and the DISPATCH command in the chip model."""
import dataclasses
import random
from fractions import Fraction

import numpy as np
import pytest

from models import moe
from models import moe_dispatch as md
from models.chip import ChipModel
from models.config import get_preset
from models.dma import Descriptor as DmaDesc, DmaDir
from models.isa import Command, Fault, IsaError, Opcode, Sram, check, decode_ring, ring_image
from models.moe_dispatch import Descriptor, DispatchError
from tb.moe_dispatch.seq import put_ranking, random_ranking
from tb.moe_dispatch.seq import random_desc as _random_desc

TINY = get_preset("tiny")
HBM = TINY.hbm.total_bytes


def random_desc(rng, **kw):
    return _random_desc(rng, TINY, **kw)


def ref_admit(d: Descriptor, ranking):
    """Independent admission + placement loop (the spec's words, not models.moe's code)."""
    T, E, k, cap = d.tokens, d.experts, d.top_k, d.capacity
    count, ptr = [0] * E, [k] * T
    exp = [[-1] * k for _ in range(T)]
    for j in range(k):
        for t in range(T):
            e = int(ranking[t][j])
            if count[e] < cap:
                exp[t][j] = e
                count[e] += 1
            elif d.policy == md.Policy.REROUTE:
                while ptr[t] < E:
                    e2 = int(ranking[t][ptr[t]])
                    ptr[t] += 1
                    if count[e2] < cap:
                        exp[t][j] = e2
                        count[e2] += 1
                        break
    offs = [sum(count[:e]) for e in range(E)]
    fill = [0] * E
    slot = [[d.drop_slot] * k for _ in range(T)]
    st = [0] * sum(count)
    for t in range(T):
        for j in range(k):
            e = exp[t][j]
            if e >= 0:
                s = offs[e] + fill[e]
                fill[e] += 1
                slot[t][j], st[s] = s, t
    dropped = sum(e < 0 for row in exp for e in row)
    dtok = sum(all(e < 0 for e in row) for row in exp)
    counts = count + offs + [dropped, dtok, len(st)]
    return [slot[t][j] for j in range(k) for t in range(T)], st, counts


def words(hbm, addr, n):
    return hbm[addr:addr + 4 * n].view("<u4").astype(np.int64).tolist()


# --- image and checks ---------------------------------------------------------------------
@pytest.mark.parametrize("seed", range(20))
def test_image_round_trip(seed):
    rng = random.Random(seed)
    f = {n: rng.randrange(1 << b) for n, b in md.FIELD_BITS.items()}
    d = Descriptor(**f)
    img = d.to_bytes()
    assert len(img) == md.IMAGE_BYTES == 32 and Descriptor.from_bytes(img) == d
    w = [int.from_bytes(img[i:i + 4], "little") for i in range(0, 32, 4)]
    assert w[0] == f["tokens"] | f["experts"] << 16 | f["top_k"] << 24 | f["policy"] << 28
    assert w[1] == f["capacity"] | f["rank_stride"] << 16
    assert w[2:7] == [f["rank_addr"], f["slot_addr"], f["slot_token_addr"], f["counts_addr"],
                      f["drop_slot"]] and w[7] == 0


def test_descriptor_field_widths():
    with pytest.raises(ValueError, match="top_k"):
        Descriptor(top_k=16)
    with pytest.raises(ValueError, match="policy"):
        Descriptor(policy=2)


def test_check_codes_and_order():
    soc = TINY.soc
    ok = Descriptor(tokens=4, experts=4, top_k=2, capacity=2, rank_stride=4, rank_addr=0,
                    slot_addr=64, slot_token_addr=128, counts_addr=192)
    assert md.check(ok, TINY) == DispatchError.OK
    r = dataclasses.replace
    cases = [
        (r(ok, tokens=0), DispatchError.BAD_TOKENS),
        (r(ok, tokens=soc.dispatch_tokens + 1, experts=0), DispatchError.BAD_TOKENS),
        (r(ok, experts=0, top_k=0), DispatchError.BAD_EXPERTS),
        (r(ok, experts=soc.dispatch_experts + 1), DispatchError.BAD_EXPERTS),
        (r(ok, top_k=0, capacity=0), DispatchError.BAD_TOP_K),
        (r(ok, top_k=5), DispatchError.BAD_TOP_K),
        (r(ok, capacity=0, rank_addr=1), DispatchError.BAD_CAPACITY),
        (r(ok, rank_addr=2, counts_addr=HBM), DispatchError.MISALIGNED),
        (r(ok, rank_stride=6), DispatchError.MISALIGNED),
        (r(ok, slot_token_addr=129), DispatchError.MISALIGNED),
        (r(ok, counts_addr=HBM - 4 * md.counts_words(4) + 4), DispatchError.WINDOW),
        (r(ok, slot_addr=HBM - 4 * 8 + 4), DispatchError.WINDOW),
        (r(ok, rank_addr=HBM - 3 * 4 - 4 + 4), DispatchError.WINDOW),
    ]
    for d, want in cases:
        assert md.check(d, TINY) == want, d
    # one token: any stride; the tables exactly at the end of HBM are inside
    assert md.check(r(ok, tokens=1, rank_stride=7), TINY) == DispatchError.OK
    assert md.check(r(ok, counts_addr=HBM - 4 * md.counts_words(4)), TINY) == DispatchError.OK
    assert md.check(r(ok, rank_addr=HBM - 3 * 4 - 4), TINY) == DispatchError.OK
    # top_k is capped at MAX_TOP_K even with more experts
    assert md.check(r(ok, experts=8, top_k=8, capacity=1), TINY) == DispatchError.OK


# --- execute ------------------------------------------------------------------------------------
def _problem_for(d: Descriptor) -> moe.MoeProblem:
    """A models.moe.MoeProblem with the descriptor's capacity through a capacity factor."""
    cap = min(d.capacity, d.tokens)
    cf = float(Fraction(cap * d.experts, d.tokens * d.top_k))
    p = moe.MoeProblem(d.tokens, 1, 1, d.experts, d.top_k, cf, moe.POLICIES[d.policy])
    return p if p.capacity == cap else None


@pytest.mark.parametrize("seed", range(60))
def test_execute_matches_reference(seed):
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    d = random_desc(rng)
    hot = rng.randrange(d.experts) if rng.random() < 0.5 else None
    ranking = random_ranking(nrng, d.tokens, d.experts, hot)
    hbm = nrng.integers(0, 256, HBM, dtype=np.uint8)
    put_ranking(hbm, d, ranking)
    before = hbm.copy()
    err, disp = md.execute(d, hbm, TINY)
    assert err == DispatchError.OK
    slot, st, counts = ref_admit(d, ranking)
    T, k, E = d.tokens, d.top_k, d.experts
    assert words(hbm, d.slot_addr, T * k) == slot
    assert words(hbm, d.slot_token_addr, len(st)) == st
    assert words(hbm, d.counts_addr, 2 * E + 3) == counts
    # nothing else changed
    touched = np.zeros(HBM, bool)
    for a, n in ((d.slot_addr, T * k), (d.slot_token_addr, len(st)), (d.counts_addr, 2 * E + 3)):
        touched[a:a + 4 * n] = True
    assert np.array_equal(hbm[~touched], before[~touched])
    c = md.read_counts(d, hbm)
    assert np.array_equal(c["tokens_per_expert"], disp.tokens_per_expert)
    assert np.array_equal(c["offsets"], disp.offsets)
    assert (c["dropped"], c["dropped_tokens"], c["kept"]) == \
        (disp.dropped, disp.dropped_tokens, disp.slot_token.size)
    # the same Dispatch as models.moe.dispatch when a capacity factor gives the capacity
    p = _problem_for(d)
    if p is not None:
        want = moe.dispatch(p, ranking)
        assert np.array_equal(want.slot, disp.slot) and np.array_equal(want.expert, disp.expert)
        assert np.array_equal(want.slot_token, disp.slot_token)


def test_capacity_sweep_both_policies():
    """Capacity 1..T on one skewed ranking: kept grows with the capacity, reroute keeps
    at least as many as drop, every expert stays within its capacity."""
    nrng = np.random.default_rng(7)
    T, E, k = 24, 6, 3
    ranking = random_ranking(nrng, T, E, hot=2)
    for cap in range(1, T + 1):
        kept = {}
        for pol in md.Policy:
            d = Descriptor(tokens=T, experts=E, top_k=k, policy=pol, capacity=cap,
                           rank_stride=8, rank_addr=0, slot_addr=0x400,
                           slot_token_addr=0x800, counts_addr=0xC00, drop_slot=T * k)
            hbm = np.zeros(HBM, np.uint8)
            put_ranking(hbm, d, ranking)
            assert md.execute(d, hbm, TINY)[0] == DispatchError.OK
            counts = words(hbm, d.counts_addr, 2 * E + 3)
            assert max(counts[:E]) <= cap and counts[-1] == sum(counts[:E])
            assert counts[2 * E] + counts[-1] == T * k
            slot, st, want = ref_admit(d, ranking)
            assert counts == want and words(hbm, d.slot_addr, T * k) == slot
            assert words(hbm, d.slot_token_addr, len(st)) == st
            kept[pol] = counts[-1]
        assert kept[md.Policy.REROUTE] >= kept[md.Policy.DROP]
    assert kept[md.Policy.DROP] == T * k        # capacity T: nothing dropped


def test_bad_rank_writes_nothing():
    rng = random.Random(3)
    d = random_desc(rng, tokens=8, experts=4, top_k=2)
    for bad in ("dup", "range"):
        ranking = random_ranking(np.random.default_rng(1), 8, 4)
        if bad == "dup":
            ranking[5, 3] = ranking[5, 0]
        else:
            ranking[2, 1] = 4
        hbm = np.zeros(HBM, np.uint8)
        put_ranking(hbm, d, ranking)
        before = hbm.copy()
        assert md.execute(d, hbm, TINY) == (DispatchError.BAD_RANK, None)
        assert np.array_equal(hbm, before)


# --- ISA and chip model -------------------------------------------------------------------------
def test_isa_dispatch_command():
    d = random_desc(random.Random(5))
    c = Command.moe_dispatch(d)
    assert c.opcode == Opcode.DISPATCH == 10 and IsaError.DISPATCH == 13
    assert decode_ring(ring_image([c])) == [c]
    assert check(c, TINY) == Fault(IsaError.NONE, 0)
    for f in ("tile", "sram", "queue", "wait_prev", "signal_next", "arg"):
        assert check(dataclasses.replace(c, **{f: 1}), TINY) == Fault(IsaError.BAD_FIELD), f
    # the descriptor is the unit's business (after the FENCE wait), not the check's
    assert not check(Command.moe_dispatch(dataclasses.replace(d, tokens=0)), TINY)
    with pytest.raises(ValueError, match="dispatch descriptor"):
        Command(Opcode.DISPATCH)
    with pytest.raises(ValueError, match="dispatch descriptor"):
        Command(Opcode.NOP, dispatch=d)


def _program(d: Descriptor, ranking_src: int):
    """DMA the ranking table through tile 0's activation SRAM to rank_addr, then DISPATCH."""
    n = d.tokens * d.rank_stride
    return [Command.load(0, Sram.ACT, DmaDesc(DmaDir.LOAD, ranking_src, 0, n)),
            Command.barrier([0]),
            Command.store(0, Sram.ACT, DmaDesc(DmaDir.STORE, 0, d.rank_addr, n)),
            Command.moe_dispatch(d), Command.halt()]


@pytest.mark.parametrize("seed", range(4))
def test_chip_program_with_dispatch(seed):
    rng = random.Random(seed)
    nrng = np.random.default_rng(seed)
    d = random_desc(rng, rank_stride=8 if seed % 2 else 16)
    d = dataclasses.replace(d, rank_addr=d.rank_addr - d.rank_addr % 8)  # DMA: same lane
    ranking = random_ranking(nrng, d.tokens, d.experts, hot=0)
    hbm = nrng.integers(0, 256, HBM, dtype=np.uint8)
    src = 0x6000
    staged = Descriptor(**{**d.to_payload(), "rank_addr": src})
    put_ranking(hbm, staged, ranking)
    res = ChipModel(TINY, hbm, policy="random", seed=seed).run(_program(d, src))
    assert res.ok and res.halted and res.completed == 5, res.error
    slot, st, counts = ref_admit(d, ranking)
    assert words(res.hbm, d.slot_addr, d.tokens * d.top_k) == slot
    assert words(res.hbm, d.counts_addr, 2 * d.experts + 3) == counts
    last = res.stats["dispatch"][-1]
    assert last.slot_token.size == counts[-1] and last.dropped == counts[2 * d.experts]


def test_chip_dispatch_error_stops_the_chip():
    d = random_desc(random.Random(9), tokens=4, experts=4, top_k=2)
    bad = dataclasses.replace(d, capacity=0)
    cmds = [Command.nop(), Command.moe_dispatch(bad), Command.halt()]
    hbm = np.zeros(HBM, np.uint8)
    res = ChipModel(TINY, hbm).run(cmds, base=0x1000)
    assert res.error == Fault(IsaError.DISPATCH, int(DispatchError.BAD_CAPACITY))
    assert res.error_addr == 0x1000 + 64 and res.completed == 1 and not res.halted
    assert res.head == 1 and not res.hbm.any()
