"""Calibrating an index whose recall curve is measured by searching: a few searches."""

import numpy as np
import pytest

from sksemantic.neighbors import HNSWIndex, calibrate_index, choose_setting
from sksemantic.neighbors._calibrate import _bisect_curve, exact_answers


def _curve_of(levels, calls):
    def curve(values):
        calls.append(int(values[0]))
        # 400 queries; recall grows with the value.
        return np.column_stack([np.full(400, levels[int(v)]) for v in values])
    return curve


def test_bisection_finds_the_cheapest_passing_value_in_few_searches():
    values = np.arange(16)
    levels = dict(zip(range(16), np.linspace(0.80, 1.0, 16), strict=True))
    calls = []
    got_values, got_cost, R = _bisect_curve(_curve_of(levels, calls), values,
                                            values / 20.0, 0.95)
    cal = choose_setting(R, got_values, got_cost, 0.95, algorithm="x", knob="v", k=10,
                         source="queries")
    full = choose_setting(np.column_stack([np.full(400, levels[v]) for v in values]),
                          values, values / 20.0, 0.95, algorithm="x", knob="v", k=10,
                          source="queries")
    assert cal.value == full.value == 12
    assert len(calls) <= 5 and calls[0] == 15  # the dearest first, then halving


def test_bisection_stops_at_once_when_the_dearest_value_misses():
    values = np.arange(8)
    levels = dict(zip(range(8), np.linspace(0.5, 0.9, 8), strict=True))
    calls = []
    got_values, got_cost, R = _bisect_curve(_curve_of(levels, calls), values,
                                            values / 10.0, 0.95)
    assert calls == [7]
    cal = choose_setting(R, got_values, got_cost, 0.95, algorithm="x", knob="v", k=10,
                         source="queries")
    assert cal.exact


def test_hnsw_calibration_matches_the_full_curve():
    pytest.importorskip("hnswlib")
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(60, 16))
    X = (centres[rng.integers(0, 60, 6000)] + 0.5 * rng.normal(size=(6000, 16)))
    X = X.astype(np.float32)
    index = HNSWIndex(n_links=4, random_state=0).fit(X[400:])
    index.VISIT_COST, index.WALK_COST = 1e-3, 0.0  # every value cheaper than exact search
    Q = X[:400]
    cal = calibrate_index(index, 10, 0.95, Q=Q)
    s, i = exact_answers(index, 10, Q=Q)
    values = index.knob_values(10)
    R = index.recall_curve(10, s, i, values, Q=Q)
    full = choose_setting(R, values, np.zeros(len(values)), 0.95, algorithm="hnsw",
                          knob="ef_search", k=10, source="queries")
    assert not cal.exact and cal.value == full.value
    assert 24 <= cal.value < values.max()  # neither end of the grid: a bisection ran
