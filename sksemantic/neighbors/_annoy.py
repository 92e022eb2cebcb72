"""Annoy (random-projection forest) backend, made picklable and exact in its distances.

Annoy finds the candidates; their scores are recomputed with the shared metric code
(:class:`RescoredIndex`), so every backend reports the same distance for the same pair.
Annoy indexes cannot be
pickled, so the index is serialised through its own file format, together with the
dimension and metric it must be reopened with (annoy does not remember them).
"""

import atexit
import os
import tempfile

import numpy as np

from ..utils import effective_n_jobs, run_spans
from ._base import RescoredIndex, inherit_docstrings

__all__ = ["AnnoyIndex"]

_ANNOY_METRIC = {
    "cosine": "angular",
    "euclidean": "euclidean",
    "manhattan": "manhattan",
    "inner_product": "dot",
}


def _new_annoy(f, metric):
    from annoy import AnnoyIndex as _Annoy

    return _Annoy(int(f), _ANNOY_METRIC[metric])


@inherit_docstrings
class AnnoyIndex(RescoredIndex):
    """Approximate nearest neighbours with annoy.

    Parameters
    ----------
    metric : {"cosine", "euclidean", "manhattan", "inner_product"}, default="cosine"
        Distance the neighbours are ranked by.
    n_trees : int, default=None
        Trees in the forest; ``max(10, n_features // 8)`` when None.
    search_k : int, default=None
        Nodes inspected per query; annoy's default (``n_trees * k``) when None.
    random_state : int or None, default=None
        Seed of the forest (annoy's ``set_seed``).
    n_jobs : int, default=1
        Threads for building and querying, through joblib (an active joblib backend
        is honoured; the build runs in annoy's own threads). None builds with one
        thread and queries with every core. Builds with more than one thread are not
        reproducible across runs even with a seed.
    """

    KNOB = "search_k"

    #: Cost of one inspected node relative to one point of exact search's blocked
    #: products (a per-query Python call, tree walks, scattered reads).
    NODE_COST = 8.0

    def knob_values(self, k):
        base = self.n_trees_ * k
        return np.unique(np.minimum(base * 2 ** np.arange(12), max(base, self.n_samples_ * self.n_trees_)))

    def default_knob(self, k):
        return int(self.search_k or self.n_trees_ * k)

    def relative_cost(self, values, k, *, Q=None, self_rows=None, reverse=False):
        values = np.asarray(values, dtype=np.float64)
        return self.NODE_COST * values / max(self.n_samples_, 1)

    def __init__(self, metric="cosine", n_trees=None, search_k=None, random_state=None, n_jobs=1):
        super().__init__(metric)
        self.n_trees = n_trees
        self.search_k = search_k
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _build(self, X_prep, sqnorm):
        self.X_ = X_prep
        self.sqnorm_ = sqnorm
        index = _new_annoy(X_prep.shape[1], self.metric)
        if self.random_state is not None:
            index.set_seed(int(self.random_state))
        for i, row in enumerate(X_prep):  # annoy has no batch insert
            index.add_item(i, row)
        self.n_trees_ = int(self.n_trees or max(10, X_prep.shape[1] // 8))
        n_build = 1 if self.n_jobs is None else effective_n_jobs(self.n_jobs, local=True)
        index.build(self.n_trees_, n_jobs=n_build)
        self._annoy = index

    def _add(self, X_prep, sqnorm):
        # A built annoy forest is immutable: rebuild it over old and new points. The
        # prepared points are a fixed point of ``prepare``, so this equals a fresh fit.
        self._build(np.concatenate([self.X_, X_prep]), np.concatenate([self.sqnorm_, sqnorm]))

    def _candidates(self, Q_prep, k, knob=None):
        # Annoy may return fewer than k items (small search_k): -1 marks the gaps.
        search_k = knob or self.search_k
        search_k = -1 if search_k is None else int(search_k)
        n_q = len(Q_prep)
        ids = np.full((n_q, k), -1, dtype=np.int64)

        def run(a, b):
            part = np.full((b - a, k), -1, dtype=np.int64)
            for r in range(a, b):
                found = self._annoy.get_nns_by_vector(Q_prep[r], k, search_k)
                part[r - a, : len(found)] = found
            return part

        def store(span, part):
            ids[span[0] : span[1]] = part

        n_jobs = effective_n_jobs(self.n_jobs)
        run_spans(run, n_q, max(1, -(-n_q // n_jobs)), n_jobs, on_result=store)
        return ids

    # -- persistence ----------------------------------------------------------------
    def __getstate__(self):
        state = self.__dict__.copy()
        index = state.pop("_annoy", None)
        if index is not None:
            fd, path = tempfile.mkstemp(suffix=".ann")
            os.close(fd)
            try:
                index.save(path)
                with open(path, "rb") as fh:
                    state["_annoy_bytes"] = fh.read()
            finally:
                os.unlink(path)
        return state

    def __setstate__(self, state):
        data = state.pop("_annoy_bytes", None)
        self.__dict__.update(state)
        if data is not None:
            self._annoy = _load_annoy_bytes(data, self.n_features_, self.metric)


def _load_annoy_bytes(data, f, metric):
    """Open an annoy index from its serialised bytes.

    Annoy memory-maps the file it loads; on POSIX the file is unlinked at once (the
    mapping stays valid), elsewhere it is removed at interpreter exit.
    """
    index = _new_annoy(f, metric)
    fd, path = tempfile.mkstemp(suffix=".ann")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    index.load(path, prefault=False)
    try:
        os.unlink(path)
    except OSError:  # pragma: no cover - Windows keeps mapped files
        atexit.register(lambda: os.path.exists(path) and os.unlink(path))
    return index
