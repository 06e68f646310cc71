"""Threads over blocks (st_model/workers.py): the same results whatever their number."""
import threading

import numpy as np
import pytest

import report_case
from st_model import metrics, neighbours, workers
from st_model.config import FusionRule, STConfig
from st_model.estimate import estimate_st_model
from st_model.scoring import BlockScorer, STTables


def test_pmap_keeps_order_and_runs_nested_maps_inline():
    seen = set()

    def inner(x):
        seen.add(threading.get_ident())
        return x * 10

    def outer(x):
        assert workers.current() == 1            # no pool inside a pool
        return list(workers.pmap(inner, range(x)))
    assert workers.current() == 1
    with workers.threads(3):
        assert workers.current() == 3
        out = list(workers.pmap(outer, range(6)))
    assert workers.current() == 1
    assert out == [[10 * i for i in range(x)] for x in range(6)]
    assert threading.get_ident() not in seen     # the inner maps ran on the pool's threads
    assert workers.usable_cpus() >= 1


def test_top_k_on_threads_equals_one_thread():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 5, (97, 120)).astype(float)     # ties: the index tie-break
    block = lambda r, c: s[np.ix_(r, c)]  # noqa: E731
    one = neighbours.top_k(block, 97, 120, 7, row_block=10, col_block=33)
    with workers.threads(3):
        three = neighbours.top_k(block, 97, 120, 7, row_block=10, col_block=33)
    np.testing.assert_array_equal(one[0], three[0])
    np.testing.assert_array_equal(one[1], three[1])


@pytest.fixture(scope="module")
def case():
    return report_case.build_case()


def test_estimate_and_evaluation_on_threads_equal_one_thread(case):
    train, q, g = case["train"], case["query"], case["gallery"]
    one = estimate_st_model(train, STConfig(), row_block=64, col_block=100)
    with workers.threads(2):
        two = estimate_st_model(train, STConfig(), row_block=64, col_block=100)
    assert one.same_as(two)
    scorer = BlockScorer(STTables.from_model(one), q, g, FusionRule())
    args = (scorer, q.pid, q.camera, g.pid, g.camera, 7, 50)
    ranks_one = metrics.query_match_ranks(*args)
    with workers.threads(2):
        ranks_two = metrics.query_match_ranks(*args)
    np.testing.assert_array_equal(ranks_one.queries, ranks_two.queries)
    assert all(np.array_equal(a, b) for a, b in zip(ranks_one.ranks, ranks_two.ranks))
