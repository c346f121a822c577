"""The seed sweep's pieces (scripts/seeds.py): seed list, entry selection, failure report."""
from scripts import seeds


def test_seed_list_is_stable_distinct_and_a_prefix_of_longer_sweeps():
    a, b = seeds.seed_list(7, 10), seeds.seed_list(7, 100)
    assert a == b[:10] and len(set(b)) == 100 and seeds.seed_list(8, 10) != a


def test_entries_skip_hang_and_nightly_entries():
    ids = seeds.entries([], nightly=False)
    assert ids and not any("test_hang_sim" in i for i in ids)
    assert "tests/sim/test_dma_sim.py::test_dma_engine" in ids
    nightly = set(seeds.entries([], nightly=True)) - set(ids)
    assert nightly and all(seeds._is_nightly(*n.split("::")) for n in nightly)
    assert seeds.entries(["dma_engine"], nightly=False) == [
        i for i in ids if "dma_engine" in i]


def test_summary_lists_each_failure_with_its_command():
    done = [dict(entry="t.py::e", sim="icarus", seed=s, status=st, wall_s=1.0, failures=f)
            for s, st, f in [(1, "pass", []), (2, "fail", [dict(test="b::x", result="FAIL",
                                                                reproduce="make sim SEED=2")]),
                             (3, "skipped", [])]]
    recs, text = seeds.summarize(done)
    assert recs[0]["seeds"] == 2 and recs[0]["passed"] == 1
    assert "seed 2 FAIL: `make sim SEED=2`" in text
