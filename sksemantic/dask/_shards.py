"""A search index sharded over dask workers, and k-NN graphs computed on them.

The corpus rows are split into contiguous shards, one per worker by default. Each shard
is a :class:`~sksemantic.search.SemanticSearch` fitted on its worker, from rows read
there, and kept there (the client holds futures). A query block is sent to every shard;
each answers its top k with the shard's own index and recall calibration, ids shifted
by the shard's first row; the answers are merged per row
(:func:`~sksemantic.dask.merge_shard_answers`) so that ties resolve as in a local
search: by score, then by the lower id. IVF graphs are the local self-join with its
lists split over the workers (``_join.py``).
"""

import dataclasses
import json
import os
import re
import shutil
import sys
from numbers import Integral
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, clone
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Interval
from sklearn.utils.validation import check_is_fitted

from ..base import VersionedPickleMixin
from ..graph import SemanticGraphTransformer, check_min_similarity, neighbors_to_csr
from ..neighbors import (
    N_CALIBRATION,
    RecallCalibration,
    choose_setting,
    drop_rows_self,
    put_self_first,
    resolve_algorithm,
    scores_to_distances,
    search_with,
    setting_costs,
)
from ..search import SemanticSearch
from ..utils import check_n_neighbors
from ._common import (
    as_row_blocks,
    get_client,
    import_dask,
    is_dask_array,
    merge_shard_answers,
    worker_task,
)
from ._join import ivf_graph

__all__ = ["ShardedSemanticSearch", "kneighbors_graph", "merge_shard_answers"]

_MANIFEST = "sharded.json"
_SHARD = re.compile(r"shard-(\d{5})")
_KIND = "sharded-search"
# 2: the shards' common calibration in the manifest; 3: and the search's target
# recall (the shards, calibrated together, are fitted without one).
_FORMAT = 3


# -- tasks run on the workers -------------------------------------------------------
@worker_task
def _fit_shard(search, X):
    return search.fit(X)


def _shard_info(search):
    train = search.index_.train_rows
    return {"n_samples": int(search.n_samples_fit_),
            "max_sqnorm": float(search.index_.max_sqnorm_),
            "train_rows": None if train is None else np.asarray(train, dtype=np.int64)}


@worker_task
def _query_shard(search, Q, k, offset, cal=None):
    """The shard's top ``k`` (at most its size) for ``Q`` at the setting ``cal`` (the
    shard's own calibration when None), ids made global."""
    k = min(int(k), search.n_samples_fit_)
    cal = search.calibration_ if cal is None else cal
    scores, ids, q_sqnorm = search_with(search.index_, cal, Q, k)
    return scores, np.where(ids >= 0, ids + offset, -1), q_sqnorm


@worker_task
def _exact_shard(search, Q, k, offset):
    """The shard's exact top ``k`` (at most its size) for ``Q``, ids made global."""
    k = min(int(k), search.n_samples_fit_)
    scores, ids, _ = search.index_.exact_query(Q, k)
    return scores, np.where(ids >= 0, ids + offset, -1)


def _knob_grid(search, k, tuned):
    """``(algorithm, knob, values, tuned)`` of the shard's index: the values worth
    trying when ``tuned`` (the sharded search has a target), or the one value the user
    gave (the default, without a target)."""
    index = search.index_
    if index.KNOB is None:
        return None
    given = search.get_params().get(index.KNOB)
    if given is not None or not tuned:
        value = given if given is not None else index.default_knob(k)
        return search.algorithm_, index.KNOB, np.array([int(value)]), False
    return search.algorithm_, index.KNOB, np.asarray(index.knob_values(k)), True


def _default_knob(search, k):
    return int(search.index_.default_knob(k))


@worker_task
def _shard_curve(search, Q, k, exact_scores, exact_ids, offset, values):
    """How much of each query's global top ``k`` this shard holds and finds at each of
    ``values`` (per-query recall contributions, which add up over shards), and the
    relative cost of each value in the shard."""
    index = search.index_
    n = search.n_samples_fit_
    local = np.where((exact_ids >= offset) & (exact_ids < offset + n), exact_ids - offset, -1)
    if index.KNOB is None:  # exact: finds every neighbour it holds, at full cost
        held = (local >= 0).sum(axis=1) / k
        return np.repeat(held[:, None], len(values), axis=1), np.ones(len(values))
    R = index.recall_curve(k, exact_scores, local, values, Q=Q)
    return R, setting_costs(index, values, k, Q=Q)


def _save_shard(search, path):
    return str(search.save(path))


def _load_shard(path, mmap, verify):
    return SemanticSearch.load(path, mmap=mmap, verify=verify)


@worker_task
def _graph_rows(parts, k, start, self_score, max_sqnorm, n_samples, params, dtype):
    """The CSR rows of one query block of the corpus (rows ``start ..``)."""
    scores, ids = merge_shard_answers(parts, k)
    q_sqnorm = parts[0][2]
    if self_score is not None:
        self_ids = np.arange(start, start + len(ids), dtype=np.int64)
        scores, ids = put_self_first(
            scores, ids, self_ids, np.full(len(ids), self_score, dtype=np.float32)
        )
    return neighbors_to_csr(scores, ids, q_sqnorm, max_sqnorm=max_sqnorm,
                            n_samples_fit=n_samples, dtype=dtype, **params)


# -- the sharded search ---------------------------------------------------------------
class ShardedSemanticSearch(VersionedPickleMixin, BaseEstimator):
    """A :class:`~sksemantic.search.SemanticSearch` sharded over dask workers.

    ``fit(X)`` splits the rows of the dask array ``X`` into ``n_shards`` contiguous
    shards and fits one clone of ``search`` per shard on a worker, from rows read
    there: the data never comes to the client, and the fitted shards stay in the
    workers' memory (this object holds futures). :meth:`kneighbors` sends the queries
    to every shard once, lets each find its top k with its own index at the setting
    the shards share (``calibration_``), and merges the answers. Ids are corpus row
    numbers. With exact shards (``algorithm="brute"``) the answers are those of one
    local ``SemanticSearch``.

    It needs a running ``distributed.Client`` (the current one is used).

    Parameters
    ----------
    search : SemanticSearch, default=None
        The search each shard is a clone of (its metric, algorithm, recall target and
        index parameters); ``SemanticSearch()`` when None. ``algorithm="auto"``
        resolves per shard, from the shard's size.
    n_shards : int, default=None
        Number of shards (with IVF: of ranges of lists joined apart); the number of
        workers when None. Shard ``s`` is placed on
        worker ``s % n_workers`` (moved elsewhere only if that worker is lost).

    Attributes
    ----------
    shards_ : list of distributed.Future
        The fitted ``SemanticSearch`` of each shard, on its worker.
    shard_offsets_ : ndarray of shape (n_shards + 1,)
        Shard ``s`` holds the corpus rows ``shard_offsets_[s]`` to
        ``shard_offsets_[s + 1] - 1``.
    shard_workers_ : list of str
        The address of the worker holding each shard (after fit).
    calibration_ : RecallCalibration or None
        How every shard searches and the recall the merged answers are expected to
        reach, measured on the merged answers (at fit on corpus rows that trained no
        index, or by :meth:`calibrate`). None only for a save of format 1, whose shards
        each answer with their own ``calibration_``.
    n_samples_fit_ : int
        Number of indexed items.
    n_features_in_ : int
        Number of features seen during fit.
    max_sqnorm_ : float
        The largest squared norm among the indexed items (over all shards), which
        ``"inner_product"`` distances are measured with.

    See Also
    --------
    sksemantic.dask.kneighbors_graph : The k-NN graph of a dask array, shard by shard.

    Notes
    -----
    The recall target holds for the merged answers, not shard by shard: each shard
    needs to find only the part of a query's top k it holds, its own best few, which
    are the easiest to find. Shards calibrated each to the target for their own top k
    would over-deliver, and pay for it in probes.
    The local estimator's recheck of large batches against the calibration is not
    done here.

    Persist with :meth:`save` (one ``SemanticSearch`` save directory per shard, written
    by the worker holding it: the path must be on storage every worker sees) and
    :meth:`load`. Pickling is refused: the shards live on the cluster.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from distributed import Client, LocalCluster
    >>> from sksemantic.dask import ShardedSemanticSearch
    >>> from sksemantic.search import SemanticSearch
    >>> X = np.random.default_rng(0).normal(size=(1000, 8)).astype(np.float32)
    >>> with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster, \\
    ...         Client(cluster) as client:
    ...     sharded = ShardedSemanticSearch(
    ...         SemanticSearch(algorithm="brute"), n_shards=2
    ...     ).fit(da.from_array(X, chunks=250))
    ...     dist, ind = sharded.kneighbors(X[:3], n_neighbors=2)
    ...     local = SemanticSearch(algorithm="brute").fit(X).kneighbors(X[:3], 2)[1]
    >>> ind.tolist() == local.tolist(), ind[:, 0].tolist()
    (True, [0, 1, 2])
    """

    _parameter_constraints: dict = {
        "search": [SemanticSearch, None],
        "n_shards": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(self, search=None, *, n_shards=None):
        self.search = search
        self.n_shards = n_shards

    def _template(self):
        return SemanticSearch() if self.search is None else self.search

    def fit(self, X, y=None):
        """Fit one shard per group of rows of ``X`` on the workers.

        Parameters
        ----------
        X : dask.array.Array or array-like of shape (n_samples, n_features)
            Corpus embeddings, with known chunk sizes. A NumPy array is first sent to
            the cluster (prefer arrays read by the workers themselves).
        y : None
            Ignored.

        Returns
        -------
        self : ShardedSemanticSearch
            The fitted search.
        """
        self._validate_params()
        template = clone(self._template())
        template._validate_params()
        dask, _ = import_dask()
        client = get_client()
        if not is_dask_array(X):
            X = check_array(X, dtype=[np.float32, np.float64], input_name="X")
        n, d = X.shape
        if isinstance(n, float) and np.isnan(n):
            X = as_row_blocks(X)  # raises: unknown chunk sizes
        n, d = int(n), int(d)
        workers = sorted(client.scheduler_info()["workers"])
        n_shards = min(self.n_shards or len(workers), n)
        bounds = np.linspace(0, n, n_shards + 1).round().astype(np.int64)
        if is_dask_array(X):
            X = as_row_blocks(X)
        else:  # one chunk per shard: each worker is sent its own rows only
            X = as_row_blocks(import_dask()[1].from_array(X, chunks=(tuple(np.diff(bounds)), d)))
        # The shards are calibrated together, on the merged answers (below): each
        # shard's own calibration would be thrown away, so a shard has no target.
        shard = clone(template).set_params(target_recall=None)
        if template.algorithm == "auto":
            # That calibration searches with corpus rows the shards hold: a graph index
            # would find them through their own links. "auto" means lists here.
            shard.set_params(algorithm=resolve_algorithm(
                "auto", int(np.diff(bounds).min()), template.metric))
        shards = []
        for s in range(n_shards):
            task = dask.delayed(_fit_shard, pure=True)(clone(shard),
                                                       X[bounds[s]:bounds[s + 1]])
            shards.append(client.compute(task, workers=[workers[s % len(workers)]],
                                         allow_other_workers=True))
        self._set_shards(client, shards, bounds, d)
        k = min(template.n_neighbors, n)
        rows = self._calibration_rows(template.random_state)
        Q = X[rows].compute() if is_dask_array(X) else X[rows]
        self.calibration_ = self._calibrate_jointly(client, Q, k, source="corpus",
                                                    self_ids=rows)
        return self

    def _calibration_rows(self, random_state):
        """Corpus rows to calibrate the merged search on: rows that trained no shard's
        index structure (their recall would be overstated), sorted."""
        n = self.n_samples_fit_
        pool = np.ones(n, dtype=bool)
        for rows, off in zip(self._train_rows, self.shard_offsets_[:-1], strict=True):
            if rows is not None:
                pool[rows + off] = False
        pool = np.flatnonzero(pool)
        size = min(N_CALIBRATION, n // 4, pool.size)
        rng = check_random_state(random_state)
        return np.sort(rng.choice(pool, size, replace=False))

    def _calibrate_jointly(self, client, Q, k, *, source, self_ids=None):
        """One setting for every shard, chosen on the merged answers.

        The queries ``Q`` are searched exactly (every shard, merged); each shard
        measures, at every value of its knob, how much of each query's merged top
        ``k`` it holds and finds; these add up to the merged recall, whose cheapest
        setting meeting ``target_recall`` is kept. Calibrating each shard for its own
        top ``k`` would over-deliver: a shard only needs the part of the top ``k`` it
        holds, its best few answers, which are the easiest to find.

        Corpus rows as queries (``self_ids``, their row numbers) are measured on their
        other neighbours: each finds itself for free, which a new query cannot, and
        which a graph does not count.
        """
        template = self._template()
        tuned = template.target_recall is not None
        grids = client.gather([client.submit(_knob_grid, f, k, tuned, pure=False)
                               for f in self.shards_])
        approx = [g for g in grids if g is not None]
        m = len(Q)
        if not approx:
            return RecallCalibration.exact_search(0, k, template.target_recall, source)
        algorithm, knob, values, tuned = approx[0]
        if any(g[1] != knob for g in approx):
            raise ValueError(
                "the shards' indexes tune different parameters "
                f"({sorted({g[1] for g in approx})}); give the search one algorithm."
            )
        if m < 2:  # too few rows to measure: the index's default, as locally
            value = client.submit(_default_knob, self.shards_[0], k, pure=False).result()
            return RecallCalibration(algorithm, knob, value if tuned else int(values[0]),
                                     np.nan, np.nan, 0, k, template.target_recall, "none",
                                     np.nan)
        q = client.scatter(Q, hash=False)
        offsets = self.shard_offsets_[:-1]
        kq = k + (self_ids is not None)
        exact = merge_shard_answers(client.gather(
            [client.submit(_exact_shard, f, q, kq, int(off), pure=False)
             for f, off in zip(self.shards_, offsets, strict=True)]), kq)
        if self_ids is not None:
            exact = drop_rows_self(*exact, self_ids)
        curves = client.gather(
            [client.submit(_shard_curve, f, q, k, *exact, int(off), values, pure=False)
             for f, off in zip(self.shards_, offsets, strict=True)])
        recall = np.minimum(1.0, sum(R for R, _ in curves))
        sizes = np.diff(self.shard_offsets_)
        cost = sum(size * c for size, (_, c) in zip(sizes, curves, strict=True)) / sizes.sum()
        cal = choose_setting(recall, values, cost, template.target_recall if tuned else None,
                             algorithm=algorithm, knob=knob, k=k, source=source)
        cal.target = template.target_recall
        return cal

    def _set_shards(self, client, shards, bounds, n_features):
        infos = client.gather([client.submit(_shard_info, f, pure=False) for f in shards])
        held = np.diff(bounds)
        for s, info in enumerate(infos):
            if info["n_samples"] != held[s]:
                raise ValueError(
                    f"shard {s} holds {info['n_samples']} items where {held[s]} were "
                    "expected: the shards are inconsistent."
                )
        who = client.who_has(shards)
        self.shards_ = shards
        self.shard_offsets_ = np.asarray(bounds, dtype=np.int64)
        self.shard_workers_ = [next(iter(who.get(f.key, ())), None) for f in shards]
        self._train_rows = [info["train_rows"] for info in infos]
        self.n_samples_fit_ = int(bounds[-1])
        self.n_features_in_ = int(n_features)
        self.max_sqnorm_ = max(info["max_sqnorm"] for info in infos)

    def _check_queries(self, X):
        if is_dask_array(X):
            X = X.compute()
        X = check_array(X, dtype=[np.float32, np.float64], input_name="X")
        if X.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {X.shape[1]} features, but ShardedSemanticSearch is expecting "
                f"{self.n_features_in_} features as input."
            )
        return X

    def _answers(self, client, X, k):
        """Each shard's top ``k`` for ``X`` (sent to the cluster once), gathered."""
        q = client.scatter(X, hash=False)
        futures = [client.submit(_query_shard, shard, q, k, int(off), self.calibration_,
                                 pure=False)
                   for shard, off in zip(self.shards_, self.shard_offsets_[:-1], strict=True)]
        return client.gather(futures)

    def kneighbors(self, X, n_neighbors=None, return_distance=True):
        """The nearest corpus items of each query, as ``SemanticSearch.kneighbors``.

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Query embeddings (a dask array is computed first).
        n_neighbors : int, default=None
            Results per query; the ``search``'s ``n_neighbors`` when None.
        return_distance : bool, default=True
            Whether to return the distances.

        Returns
        -------
        neigh_dist : ndarray of shape (n_queries, n_neighbors)
            Distances, increasing along each row; only if ``return_distance``.
        neigh_ind : ndarray of shape (n_queries, n_neighbors)
            Corpus row numbers of the nearest items.
        """
        check_is_fitted(self)
        template = self._template()
        k = template.n_neighbors if n_neighbors is None else n_neighbors
        check_n_neighbors(k, self.n_samples_fit_, include_self=False)
        X = self._check_queries(X)
        parts = self._answers(get_client(), X, k)
        scores, ids = merge_shard_answers(parts, k)
        if not return_distance:
            return ids
        dist = scores_to_distances(scores, template.metric, parts[0][2], self.max_sqnorm_)
        return dist, ids

    def calibrate(self, X, top_k=None):
        """Tune the shards' search to representative queries ``X``.

        The queries are searched exactly over all shards, and the shards' common
        setting is set to the cheapest whose merged answers reach ``target_recall``
        on them (see ``calibration_``).

        Parameters
        ----------
        X : array-like of shape (n_queries, n_features)
            Queries like those the search will serve.
        top_k : int, default=None
            Results per query to calibrate for; the ``search``'s ``n_neighbors`` when
            None.

        Returns
        -------
        self : ShardedSemanticSearch
        """
        check_is_fitted(self)
        k = self._template().n_neighbors if top_k is None else top_k
        check_n_neighbors(k, self.n_samples_fit_, name="top_k", include_self=False)
        X = self._check_queries(X)
        self.calibration_ = self._calibrate_jointly(get_client(), X, k, source="queries")
        return self

    # -- persistence ----------------------------------------------------------------
    def save(self, path):
        """Write every shard to ``path/shard-NNNNN`` with ``SemanticSearch.save``.

        Each shard is written by the worker holding it, as a ``SemanticSearch`` save
        directory (loadable on its own); ``path/sharded.json`` then records the
        shards and their rows. ``path`` must be on storage every worker and the
        client see (a shared file system).

        Parameters
        ----------
        path : str or path-like
            A directory; created if missing. It may be empty or hold an earlier
            sharded save; anything else is refused with a :class:`FileExistsError`,
            so that nothing there is lost.

        Returns
        -------
        path : pathlib.Path
        """
        check_is_fitted(self)
        path = Path(path).resolve()
        _check_target(path)
        path.mkdir(parents=True, exist_ok=True)
        client = get_client()
        names = [f"shard-{s:05d}" for s in range(len(self.shards_))]
        futures = [client.submit(_save_shard, f, str(path / name), pure=False)
                   for f, name in zip(self.shards_, names, strict=True)]
        client.gather(futures)
        from .. import __version__

        manifest = {"format": _FORMAT, "kind": _KIND, "sksemantic_version": __version__,
                    "shards": names, "offsets": self.shard_offsets_.tolist(),
                    "n_features": self.n_features_in_, "n_shards": self.n_shards,
                    "calibration": _calibration_fields(self.calibration_),
                    "target_recall": self._template().target_recall}
        tmp = path / f".{_MANIFEST}.tmp"
        tmp.write_text(json.dumps(manifest, indent=1))
        os.replace(tmp, path / _MANIFEST)
        for entry in os.scandir(path):  # shards of an earlier save with more of them
            if _SHARD.fullmatch(entry.name) and entry.name not in names:
                shutil.rmtree(entry.path, ignore_errors=True)
        return path

    @classmethod
    def load(cls, path, *, mmap=True, verify=True):
        """Open a sharded search written by :meth:`save`, one shard per worker.

        Each shard is opened by ``SemanticSearch.load`` on its worker (so ``path`` must
        be visible there); loading unpickles, so only load files you trust.

        Parameters
        ----------
        path : str or path-like
            The directory given to :meth:`save`.
        mmap : bool, default=True
            Memory-map each shard's index instead of reading it into memory.
        verify : bool, default=True
            Check every file's checksum.

        Returns
        -------
        search : ShardedSemanticSearch
        """
        path = Path(path).resolve()
        try:
            manifest = json.loads((path / _MANIFEST).read_text())
        except FileNotFoundError:
            raise FileNotFoundError(
                f"{path} holds no sharded save: {path / _MANIFEST} is missing."
            ) from None
        except ValueError as exc:
            raise ValueError(f"{path / _MANIFEST} is damaged: {exc}.") from exc
        if manifest.get("kind") != _KIND or manifest.get("format") not in (1, 2, _FORMAT):
            raise ValueError(
                f"{path / _MANIFEST} is not a sharded search of format 1 to {_FORMAT} "
                f"(kind {manifest.get('kind')!r}, format {manifest.get('format')!r})."
            )
        client = get_client()
        workers = sorted(client.scheduler_info()["workers"])
        shards = [
            client.submit(_load_shard, str(path / name), mmap, verify, pure=False,
                          workers=[workers[s % len(workers)]], allow_other_workers=True)
            for s, name in enumerate(manifest["shards"])
        ]
        template = client.submit(_params_of, shards[0], pure=False).result()
        if "target_recall" in manifest:  # formats 1 and 2: each shard held the target
            template["target_recall"] = manifest["target_recall"]
        out = cls(SemanticSearch(**template), n_shards=manifest["n_shards"])
        out._set_shards(client, shards, np.asarray(manifest["offsets"]),
                        manifest["n_features"])
        fields = manifest.get("calibration")  # format 1: each shard its own
        out.calibration_ = None if fields is None else RecallCalibration(**fields)
        return out

    def __getstate__(self):
        if hasattr(self, "shards_"):
            raise TypeError(
                "A fitted ShardedSemanticSearch cannot be pickled: its shards live on the "
                "cluster. Use save(path) and ShardedSemanticSearch.load(path)."
            )
        return super().__getstate__()


def _params_of(search):
    return search.get_params()


def _calibration_fields(cal):
    """A calibration as JSON-able fields (without the reference scores)."""
    if cal is None:
        return None
    fields = dataclasses.asdict(cal)
    fields["reference"] = None
    return fields


def _check_target(path):
    if not path.exists():
        return
    if not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a directory; refusing to replace it.")
    ours = {_MANIFEST, f".{_MANIFEST}.tmp"}
    foreign = sorted(e.name for e in os.scandir(path)
                     if e.name not in ours and not _SHARD.fullmatch(e.name))
    if foreign:
        raise FileExistsError(
            f"{path} holds entries that are not part of a sharded save: "
            f"{', '.join(map(repr, foreign[:10]))}; refusing to save there, so that they "
            "are not lost."
        )


# -- graphs -----------------------------------------------------------------------------
def kneighbors_graph(X, transformer=None, *, n_shards=None):
    """The k-NN graph of a dask array, computed on the workers.

    The graph ``transformer.fit_transform(X)`` gives locally (same shape, mode, values,
    cut-offs, explicit diagonal, sorted rows and index dtype).

    - With IVF (``algorithm="ivf"``, or ``"auto"`` beyond 20,000 rows), the local
      self-join runs with its lists split over the workers: the lists are trained once,
      the row blocks assigned where they live, every worker builds the same index from
      a copy of the corpus, and each joins its range of lists; the graph is the local
      one (see :ref:`dask`).
    - With other indexes, as a :class:`ShardedSemanticSearch` would: the rows of ``X``
      are split into shards indexed on the workers, every row block of ``X`` (its
      chunks) is searched in every shard where the shard lives, the shards' answers are
      merged per row, and each block's rows of the CSR matrix are built on a worker.
      Only those rows come back.

    It needs a running ``distributed.Client`` (the current one is used).

    Parameters
    ----------
    X : dask.array.Array of shape (n_samples, n_features)
        The embeddings, with known chunk sizes; its row chunks are the query blocks.
    transformer : SemanticGraphTransformer, default=None
        Its parameters (``n_neighbors``, ``mode``, ``metric``, cut-offs, algorithm and
        index parameters) define the graph; it is not fitted. The default
        ``SemanticGraphTransformer()`` when None. ``algorithm="auto"`` resolves as
        locally, from the number of rows.
    n_shards : int, default=None
        Number of shards (with IVF: of ranges of lists joined apart); the number of
        workers when None.

    Returns
    -------
    graph : scipy.sparse.csr_matrix of shape (n_samples, n_samples)
        With ``algorithm="brute"`` and with IVF, equal to the local
        ``fit_transform(X)`` (values up to float32 round-off of differently blocked
        products); with other approximate indexes, at its recall target.

    Examples
    --------
    >>> import numpy as np
    >>> import dask.array as da
    >>> from distributed import Client, LocalCluster
    >>> from sksemantic.dask import kneighbors_graph
    >>> from sksemantic.graph import SemanticGraphTransformer
    >>> X = np.random.default_rng(0).normal(size=(600, 8)).astype(np.float32)
    >>> graph_maker = SemanticGraphTransformer(n_neighbors=5, algorithm="brute")
    >>> with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster, \\
    ...         Client(cluster) as client:
    ...     graph = kneighbors_graph(da.from_array(X, chunks=200), graph_maker, n_shards=3)
    >>> local = graph_maker.fit_transform(X)
    >>> graph.shape, (graph.indices == local.indices).all(), np.allclose(graph.data, local.data)
    ((600, 600), np.True_, True)
    """
    if transformer is None:
        transformer = SemanticGraphTransformer()
    if not isinstance(transformer, SemanticGraphTransformer):
        raise TypeError(
            "transformer must be a SemanticGraphTransformer, got "
            f"{type(transformer).__name__}."
        )
    t = clone(transformer)
    t._validate_params()
    if t.max_distance is not None and t.min_similarity is not None:
        raise ValueError(
            "Give at most one of max_distance and min_similarity: they are two ways "
            "of stating the same cut-off."
        )
    check_min_similarity(t.min_similarity, t.metric)
    dask, _ = import_dask()
    X = as_row_blocks(X)
    n = int(X.shape[0])
    if n < 2:
        raise ValueError(f"X must have at least 2 rows for a graph, got {n}.")
    check_n_neighbors(t.n_neighbors, n)
    k = t.n_neighbors if t.mode == "connectivity" else t.n_neighbors + 1
    if n_shards is not None and (not isinstance(n_shards, Integral) or n_shards < 1):
        raise ValueError(f"n_shards must be a positive int or None, got {n_shards!r}.")
    if resolve_algorithm(t.algorithm, n, t.metric, storage=t.storage) == "ivf":
        log = None
        if t.verbose:
            def log(message):
                print(f"[kneighbors_graph] {message}", file=sys.stderr, flush=True)
        joined = ivf_graph(X, t, k, n_parts=n_shards, log=log)
        if joined is None:  # exact search is cheaper at the target: brute-force shards
            t.set_params(algorithm="brute")
            if log is not None:
                log("exact search is cheaper than IVF at the target; searching exactly")
            return kneighbors_graph(X, t, n_shards=n_shards)
        scores, ids, q_sqnorm, info = joined
        return neighbors_to_csr(
            scores, ids, q_sqnorm, metric=t.metric, max_sqnorm=info["max_sqnorm"],
            n_samples_fit=n, mode=t.mode, max_distance=t.max_distance,
            min_similarity=t.min_similarity,
            dtype=X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float64),
        )
    search_params = set(SemanticSearch().get_params())
    params = {name: v for name, v in t.get_params().items() if name in search_params}
    # The shards are searched for k per row below, the row itself among them; the
    # search is calibrated (on corpus rows, each left out of its own answers) for the
    # k - 1 others a row's graph holds.
    params["n_neighbors"] = max(1, k - 1)
    sharded = ShardedSemanticSearch(SemanticSearch(**params), n_shards=n_shards).fit(X)
    if t.verbose:
        print(f"[kneighbors_graph] {len(sharded.shards_)} shards: "
              f"{sharded.calibration_.describe()}", file=sys.stderr, flush=True)
    # Each point is its own first neighbour (distance 0) under a metric; the inner
    # product ranks without that convention, as locally.
    self_score = {"cosine": 1.0, "inner_product": None}.get(t.metric, 0.0)
    dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    csr_params = {"metric": t.metric, "mode": t.mode, "max_distance": t.max_distance,
                  "min_similarity": t.min_similarity}
    starts = np.concatenate([[0], np.cumsum(X.chunks[0])])
    rows = []
    for b, block in enumerate(X.to_delayed().ravel()):
        parts = [dask.delayed(_query_shard, pure=True)(shard, block, k, int(off),
                                                        sharded.calibration_)
                 for shard, off in zip(sharded.shards_, sharded.shard_offsets_[:-1],
                                       strict=True)]
        rows.append(dask.delayed(_graph_rows, pure=True)(
            parts, k, int(starts[b]), self_score, sharded.max_sqnorm_, n, csr_params, dtype))
    client = get_client()
    blocks = client.gather(client.compute(rows))
    return _stack_rows(blocks, n, k)


def _stack_rows(blocks, n, k):
    """Row blocks of CSR matrices stacked, with the index dtype a local graph has."""
    index_dtype = np.int32 if max(n, n * k) < 2**31 else np.int64
    nnz = np.cumsum([0] + [b.nnz for b in blocks])
    indptr = np.concatenate(
        [[0]] + [b.indptr[1:].astype(np.int64) + nnz[i] for i, b in enumerate(blocks)]
    )
    return sp.csr_matrix(
        (np.concatenate([b.data for b in blocks]),
         np.concatenate([b.indices for b in blocks]).astype(index_dtype, copy=False),
         indptr.astype(index_dtype, copy=False)),
        shape=(n, n),
    )
