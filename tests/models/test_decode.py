"""models.decode: the paged KV cache layout against a pure-Python gather/scatter, the
append (new pages from the free list, saturation with the cache's scales), the float64
reference, and the problem's checks."""
import numpy as np
import pytest

from models import decode as dec

SEED = 20261124


def _py_k_byte(T: int, d: int, slot: int, e: int) -> int:
    """Byte of element e of token slot in a K page: K^T tile (block, chunk), row r, col."""
    block, col = divmod(slot, T)
    chunk, r = divmod(e, T)
    return ((block * (d // T) + chunk) * T + r) * T + col


def _py_v_byte(T: int, d: int, slot: int, e: int) -> int:
    """Byte of element e of token slot in a V page: V tile (block, chunk), row r, col."""
    block, r = divmod(slot, T)
    chunk, col = divmod(e, T)
    return ((block * (d // T) + chunk) * T + r) * T + col


def _py_gather(cache, b):
    """K, V codes of sequence b read byte by byte through the page table."""
    P, T, d = cache.page_tokens, cache.tile, cache.head_dim
    k = np.zeros((cache.lengths[b], d), np.uint8)
    v = np.zeros_like(k)
    for t in range(cache.lengths[b]):
        page = cache.tables[b][t // P]
        for e in range(d):
            k[t, e] = cache.k_pages[page, _py_k_byte(T, d, t % P, e)]
            v[t, e] = cache.v_pages[page, _py_v_byte(T, d, t % P, e)]
    return k, v


def _cache(fmt="int8", ctx=(5, 16, 0, 21), T=4, P=8, d=8, rng=None, **kw):
    rng = rng or np.random.default_rng(SEED)
    ks = [rng.standard_normal((c, d)) for c in ctx]
    vs = [rng.standard_normal((c, d)) for c in ctx]
    return dec.build_cache(ks, vs, tile=T, page_tokens=P, fmt=fmt, rng=rng, **kw), ks, vs


@pytest.mark.parametrize("fmt", dec.FORMATS)
def test_layout_matches_pure_python_gather(fmt):
    cache, ks, vs = _cache(fmt)
    assert any(t != sorted(t) for t in cache.tables)
    for b in range(len(ks)):
        k, v = dec.gather(cache, b)
        pk, pv = _py_gather(cache, b)
        assert np.array_equal(k, pk) and np.array_equal(v, pv)
        assert np.array_equal(k, dec.quantize(ks[b], fmt, cache.s_k))
        assert np.array_equal(v, dec.quantize(vs[b], fmt, cache.s_v))


def test_token_offsets_are_the_pure_python_bytes():
    cache, *_ = _cache(T=4, P=16, d=12)
    for slot in range(16):
        ko, vo = dec.token_offsets(cache, slot)
        assert list(ko) == [_py_k_byte(4, 12, slot, e) for e in range(12)]
        assert list(vo) == [_py_v_byte(4, 12, slot, e) for e in range(12)]


@pytest.mark.parametrize("fmt", dec.FORMATS)
def test_append_new_page_and_saturation(fmt):
    cache, ks, vs = _cache(fmt, spare_pages=0)
    rng = np.random.default_rng(SEED + 1)
    kn = rng.standard_normal((4, 8)) * 100         # far outside the cache's range
    vn = rng.standard_normal((4, 8))
    free_before = list(cache.free)
    after, where = dec.append(cache, kn, vn)
    assert cache.lengths == [5, 16, 0, 21] and after.lengths == [6, 17, 1, 22]
    # sequences 1 (16 tokens = 2 full pages) and 2 (empty) took the first free pages
    assert after.tables[1][-1] == free_before[0] and after.tables[2] == [free_before[1]]
    assert after.free == free_before[2:]
    for b, (page, slot) in enumerate(where):
        assert (page, slot) == (after.tables[b][-1], (after.lengths[b] - 1) % 8)
        k, v = _py_gather(after, b)
        assert np.array_equal(k[:-1], _py_gather(cache, b)[0])
        assert np.array_equal(k[-1], dec.quantize(kn[b], fmt, cache.s_k))
        assert np.array_equal(v[-1], dec.quantize(vn[b], fmt, cache.s_v))
    top = 127 if fmt == "int8" else 448
    assert np.max(np.abs(dec.dequantize(k[-1], fmt, cache.s_k))) == pytest.approx(
        top * cache.s_k)                              # saturated at the cache's scale
    with pytest.raises(dec.CacheFull, match="sequence 0 needs a new page"):
        for _ in range(3):                           # sequence 0 fills its page (8 tokens)
            after, _ = dec.append(after, kn, vn)


def test_scales_over_valid_tokens():
    cache, ks, vs = _cache()
    assert cache.s_k == pytest.approx(max(np.abs(k).max() for k in ks if len(k)) / 127,
                                      rel=1e-6)
    with pytest.raises(ValueError, match="permutation"):
        _cache(order=[0, 0, 1])


def test_reference_is_softmax_over_the_dequantized_cache():
    cache, *_ = _cache()
    rng = np.random.default_rng(SEED + 2)
    q = rng.standard_normal((4, 8))
    ref = dec.reference(cache, q, scale=0.3)
    for b in (0, 1, 3):
        k, v = (dec.dequantize(x, "int8", s) for x, s in zip(dec.gather(cache, b),
                                                              (cache.s_k, cache.s_v)))
        w = np.exp(0.3 * k @ q[b])
        assert np.allclose(ref[b], (w / w.sum()) @ v, rtol=1e-12, atol=1e-12)
    assert not ref[2].any()                          # an empty sequence attends to nothing


def test_problem_checks():
    p = dec.DecodeProblem(2, 64, [3, 0], 16)
    assert p.kv_len == (4, 1) and p.softmax_scale == pytest.approx(0.125)
    for kw, msg in ((dict(fmt="bf16"), "fmt"), (dict(batch=0), "batch"),
                    (dict(context=(1,)), "context"), (dict(context=(1, -1)), "context")):
        args = dict(batch=2, head_dim=64, context=(3, 0), page_tokens=16) | kw
        with pytest.raises(ValueError, match=msg):
            dec.DecodeProblem(**args)
    with pytest.raises(ValueError, match="multiple"):
        _cache(P=6)
