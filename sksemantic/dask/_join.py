"""The IVF self-join of a dask array, its lists split over the workers.

A k-NN graph is a self-join: every point's neighbours among the points. Locally the IVF
self-join (:meth:`~sksemantic.neighbors.IVFIndex.self_join`) scores each list against
the points that probe it and offers every scored pair to both of its points, so each
pair is found from either end and scored once. Here the same join runs on the workers:

1. the list centres are trained once, on one worker, from the sample a local fit
   draws; every row block is assigned to its list where the block lives;
2. every worker builds the same list-sorted index (a point's probed lists can hold rows
   of any block, so each worker holds a copy of the corpus, as every query block of a
   sharded search reaches every shard);
3. the setting is calibrated as locally: calibration rows held out of the training,
   their exact neighbours searched block by block where the blocks live;
4. the lists are split into one range per worker; each worker runs the join's first
   pass (list-mates) for its range, then, with every point's first threshold and
   probes, the second pass for its range's points;
5. the candidates each worker found for a range of rows are merged on the worker that
   owns the range (each pair reached a point from one worker only), and only the
   merged rows come back.

The answers are the local self-join's for the same setting (the same pairs are scored;
ties resolve by the lower id), so the graph meets the local recall.
"""

import numpy as np
from sklearn.utils import check_random_state

from ..graph import measure_self_join, training_share
from ..neighbors import (
    N_CALIBRATION,
    BruteIndex,
    calibrate_index,
    drop_rows_self,
    index_seed,
    make_index,
    put_self_first,
)
from ..utils import small_pages
from ._common import get_client, merge_shard_answers, worker_task

__all__ = ["ivf_graph"]


# -- tasks run on the workers -------------------------------------------------------
@worker_task
def _stack(*blocks):
    """The blocks as one array, on ordinary pages: a fresh array of gigabytes stalled
    for seconds on huge-page compaction (see :func:`~sksemantic.utils.small_pages`)."""
    blocks = [np.asarray(b) for b in blocks]
    shape = (sum(len(b) for b in blocks), blocks[0].shape[1])
    out = small_pages(np.empty(shape, dtype=np.result_type(*blocks)))
    return np.concatenate(blocks, axis=0, out=out)


@worker_task
def _train(index, X, holdout):
    return index.train(X, holdout=holdout)


#: Nearest lists kept per row by the assignment, for the join's probes.
_PROBES = 8


@worker_task
def _assign(index, block, n_probe):
    return index.assign(np.asarray(block), n_probe)


def _first_of(pair, j):
    return pair[j]


@worker_task
def _build(trained, X, labels, holdout):
    return trained.fit(X, holdout=holdout, labels=labels)


@worker_task
def _concatenate(*parts):
    return np.concatenate(parts)


def _max_sqnorm(index):
    return float(index.max_sqnorm_)


def _join_lists(index, n_parts):
    return index.join_lists(n_parts)


def _take(X, rows):
    return X[rows]


@worker_task
def _exact_rows(metric, Q, X, start, stop, k):
    """The exact top ``k`` of ``Q`` among the rows ``start:stop`` of ``X``."""
    index = BruteIndex(metric).fit(X[start:stop])
    s, i, _ = index.exact_query(Q, min(int(k), stop - start))
    return s, np.where(i >= 0, i + start, -1)


@worker_task
def _calibrate(index, k, target, rows, exact, knob, reverse):
    return calibrate_index(index, k, target, self_rows=rows, reverse=reverse, knob=knob,
                           source="self-join", exact=exact)


@worker_task
def _first(index, k, n_probe, lists, probes):
    """Pass 1 for a range of lists, with the probes the assignment found (in fit
    order) when they are enough."""
    a, b = index.offsets_[lists[0]], index.offsets_[lists[1]]
    given = probes[index.perm_[a:b]] if probes.shape[1] >= (n_probe or 0) > 1 else None
    return index.join_first(k, n_probe, lists, probes=given)


def _first_state(part):
    return part.thresholds, part.probes, part.start, part.stop


@worker_task
def _second(index, k, part, thresholds, probes):
    return index.join_second(k, part, thresholds, probes)


def _slice(answer, start, stop):
    # Copies: a view would keep (and could ship) the whole answer.
    return answer[0][start:stop].copy(), answer[1][start:stop].copy()


@worker_task
def _merge(index, pieces, k, start):
    """A row range's candidates from every part merged, rows short of ``k`` answered
    exactly, rows and ids in fit order."""
    scores, ids = merge_shard_answers(pieces, k)
    scores, ids = index.join_fill(scores, ids, start)
    return index.join_rows(scores, ids, start, rescore=True)


# -- the client side ----------------------------------------------------------------
def ivf_graph(X, t, k, n_parts=None, log=None):
    """The IVF self-join of the dask array ``X`` for the graph transformer ``t``.

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        Row blocks spanning all columns, with known sizes.
    t : SemanticGraphTransformer
        Validated; its parameters define the index, the target and the graph.
    k : int
        Points per row, the row itself included (under a metric).
    n_parts : int, default=None
        Ranges of lists joined separately (spread over the workers); one per worker
        when None.
    log : callable, default=None
        Called with progress messages.

    Returns
    -------
    scores, ids : ndarray of shape (n_samples, k)
        Rows and ids in ``X``'s order, the row itself first under a metric.
    q_sqnorm : ndarray of shape (n_samples,)
    info : dict
        ``max_sqnorm`` (for distances) and ``calibration`` (the graph's setting and
        the recall it measured; None when nothing was measured).

    Or None when the calibration finds exact search cheaper than the probes the
    target needs: the graph is then to be computed exactly.
    """
    client = get_client()
    workers = sorted(client.scheduler_info()["workers"])
    n = int(X.shape[0])
    blocks = client.compute(list(X.to_delayed().ravel()))
    # Each worker gets its copy of the corpus and its index; a lost worker's tasks
    # run on another (loose restrictions) rather than wait for it forever.
    pinned = {"allow_other_workers": True, "pure": False}
    full = [client.submit(_stack, *blocks, workers=[w], priority=2, **pinned) for w in workers]
    # The rows a local fit holds out for calibration, and its index.
    n_cal = min(N_CALIBRATION, n // 4)
    knob = t.n_probe
    rows = None
    k_other = k - 1 if t.metric != "inner_product" else k  # a metric finds the row first
    if n_cal >= 2 and min(k, n - 1) >= 1 and (t.target_recall is not None or knob is not None):
        rows = np.sort(check_random_state(t.random_state).choice(n, n_cal, replace=False))
    # An int seed, drawn here when none is given, so that the client knows the rows
    # the worker that trains the lists draws.
    seed = index_seed(t.random_state)
    if seed is None:
        seed = int(check_random_state(None).randint(np.iinfo(np.int32).max))
    index = make_index("ivf", t.metric, n, n_lists=t.n_lists, n_probe=knob,
                       storage=t.storage, random_state=seed,
                       n_jobs=t.n_jobs, verbose=t.verbose)
    trained = client.submit(_train, index, full[0], rows, workers=[workers[0]], **pinned)
    # The calibration rows' exact neighbours, block by block, on the workers that do
    # not train the centres (every block reaches them for their copy of the corpus).
    exact, tries, cal_rows = None, [None], rows
    if rows is not None and k_other >= 1:
        # The training rows' share of the graph's rows join the calibration rows, as
        # SemanticGraphTransformer measures its graph (a graph's rows include them).
        train = index.training_rows(n, rows)
        extra = training_share(rows, train if len(train) < n else None, n, t.random_state)
        cal_rows = np.concatenate([rows, extra])
        others = workers[1:] or workers
        Q = client.submit(_take, full[-1], cal_rows, workers=[workers[-1]], **pinned)
        cuts = np.linspace(0, n, len(others) + 1).astype(np.int64)
        exact = [client.submit(_exact_rows, t.metric, Q, full[workers.index(w)], int(a), int(b),
                               k_other + 1, workers=[w], **pinned)
                 for w, a, b in zip(others, cuts[:-1], cuts[1:], strict=True)]
        tries = [True] + ([False] if t.target_recall is not None and knob is None else [])
    assigned = [client.submit(_assign, trained, b, _PROBES, priority=1, pure=False)
                for b in blocks]
    labels = client.submit(_concatenate, *[client.submit(_first_of, p, 0, pure=False)
                                           for p in assigned], priority=1, pure=False)
    probes = client.submit(_concatenate, *[client.submit(_first_of, p, 1, pure=False)
                                           for p in assigned], priority=1, pure=False)
    built = [client.submit(_build, trained, full[j], labels, rows, workers=[w], priority=1,
                           **pinned) for j, w in enumerate(workers)]
    if exact is not None:
        exact = drop_rows_self(*merge_shard_answers(client.gather(exact), k_other + 1),
                               cal_rows)
    del blocks, full, assigned  # the workers' indexes hold every row from here on
    info = {"max_sqnorm": client.submit(_max_sqnorm, built[0], pure=False).result()}
    cal = None
    for reverse in tries:
        n_probe = knob
        if reverse is not None:
            cal = client.submit(_calibrate, built[0], k_other, t.target_recall, cal_rows, exact,
                                knob, reverse, pure=False).result()
            if cal.exact:
                # Exact search is cheaper than the probes the target needs (as for the
                # local graph, which then joins exactly): the caller searches exactly.
                # A join probing every list would hold n_lists probes per point.
                return None
            n_probe = int(cal.value)
        scores, ids, q_sqnorm = _join(client, built, workers, probes, k, n_probe, n,
                                      n_parts or len(built))
        if t.metric != "inner_product":
            self_score = np.ones(n, np.float32) if t.metric == "cosine" else np.zeros(n, np.float32)
            scores, ids = put_self_first(scores, ids, np.arange(n), self_score)
        if cal is None:
            break
        measure_self_join(cal, scores, ids, cal_rows, exact, k_other)
        if log is not None:
            log(f"graph: {cal.describe()}")
        if cal.target is None or cal.recall_low >= cal.target:
            break
    info["calibration"] = cal
    return scores, ids, q_sqnorm, info


def _join(client, built, workers, probes, k, n_probe, n, n_parts):
    """The self-join on the workers' indexes (one range of lists each), merged into
    fit-order rows.

    Every task runs where its range's index is (``workers[j]`` holds ``built[j]``):
    left to itself, the scheduler sometimes moved a slice of a worker's candidates,
    and with it their whole array, to the other worker.
    """
    def on(j):
        return {"workers": [workers[j % len(workers)]], "allow_other_workers": True,
                "pure": False}

    ranges = client.submit(_join_lists, built[0], n_parts, pure=False).result()
    owner = [built[j % len(built)] for j in range(len(ranges))]
    first = [client.submit(_first, owner[j], k, n_probe, r, probes, **on(j))
             for j, r in enumerate(ranges)]
    states = client.gather([client.submit(_first_state, f, **on(j))
                            for j, f in enumerate(first)])
    thresholds = np.concatenate([s[0] for s in states])
    probes = None if states[0][1] is None else np.concatenate([s[1] for s in states])
    spans = [(s[2], s[3]) for s in states]
    del states
    thresholds = client.scatter(thresholds, broadcast=True)
    probes = None if probes is None else client.scatter(probes, broadcast=True)
    second = [client.submit(_second, owner[j], k, f, thresholds, probes, **on(j))
              for j, f in enumerate(first)]
    merged = []
    for j, (a, b) in enumerate(spans):
        pieces = [client.submit(_slice, s, a, b, **on(i)) for i, s in enumerate(second)]
        merged.append(client.submit(_merge, owner[j], pieces, k, a, **on(j)))
    scores = small_pages(np.empty((n, k), dtype=np.float32))
    ids = small_pages(np.empty((n, k), dtype=np.int64))
    q_sqnorm = np.empty(n, dtype=np.float32)
    for rows, s, i, sq in client.gather(merged):
        scores[rows], ids[rows], q_sqnorm[rows] = s, i, sq
    return scores, ids, q_sqnorm
