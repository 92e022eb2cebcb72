"""Pickling stamps the version on the pickle, not on the live estimator."""

import pickle

import numpy as np

from sksemantic.graph import SemanticGraphTransformer


def test_pickling_leaves_the_estimator_unchanged():
    est = SemanticGraphTransformer(n_neighbors=1).fit(np.eye(3))
    before = set(est.__dict__)
    state = pickle.loads(pickle.dumps(est)).__dict__
    assert set(est.__dict__) == before
    assert "_sksemantic_version" not in state  # consumed by __setstate__
