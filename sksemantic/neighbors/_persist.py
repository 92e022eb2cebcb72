"""Saving an index to a directory and opening it memory-mapped.

Pickling copies every array into the pickle; a served index should instead be opened
from disk without reading it: the arrays go to ``.npy`` files opened with
``np.load(mmap_mode="r")`` and an annoy forest to its own file, which annoy maps.
Pages are then read on demand and shared between processes that open the same files.
An HNSW graph has no mapped format: it is pickled with the rest of the state and read
into memory on load (its vectors for re-scoring are ``.npy`` files like any array).

The directory itself (one version per save, a checked manifest, an atomic switch to
the new version) is :mod:`sksemantic._persistence`; this module writes and reads the
files of one version.
"""

import copy
import pickle
from functools import partial

import numpy as np

from .._persistence import open_directory, save_directory
from ._annoy import _new_annoy

__all__ = ["load_index", "save_index"]

_ESTIMATOR = "search.pkl"
_STATE = "index.pkl"
_ANNOY = "index.ann"
#: Attributes holding one entry per indexed point, checked against ``n_samples_``.
_PER_POINT = ("X_", "sqnorm_", "perm_", "codes_", "code_sqnorm_")


def save_index(index, path):
    """Write a fitted index to the directory ``path`` for :func:`load_index`.

    ``path`` is created if needed; it may be empty or hold an earlier save, which
    stays whole (and readable by processes serving it) until the new save is complete.
    A directory holding anything else is refused.

    Parameters
    ----------
    index : BaseIndex
        A fitted index.
    path : str or path-like
        The directory.

    Returns
    -------
    path : pathlib.Path

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from sksemantic.neighbors import BruteIndex, load_index, save_index
    >>> X = np.eye(3, dtype=np.float32)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     loaded = load_index(save_index(BruteIndex().fit(X), tmp))
    ...     loaded.query(X[:1], 1)[1].tolist()
    [[0]]
    """
    return save_directory(path, partial(write_index_files, index), kind="index")


def load_index(path, *, mmap=True, verify=True):
    """Open an index written by :func:`save_index` (or the index of a saved
    :class:`~sksemantic.search.SemanticSearch`).

    Loading unpickles the index's state: only load files you trust, as with
    :func:`pickle.load` and :func:`joblib.load`. The files are checked against the
    sizes and checksums recorded when they were saved before anything is unpickled,
    which catches damaged and truncated files, but not a save crafted with a matching
    manifest.

    Parameters
    ----------
    path : str or path-like
        The directory given to :func:`save_index`.
    mmap : bool, default=True
        Open the arrays as read-only memory maps and let annoy map its forest: nothing
        is read until a query touches it. Adding points to such an index builds new
        in-memory arrays and leaves the files untouched.
    verify : bool, default=True
        Check every file's checksum, which reads each file once (even with
        ``mmap=True``); turn it off to open a huge index without reading it. The file
        sizes are checked either way.

    Returns
    -------
    index : BaseIndex

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from sksemantic.neighbors import IVFIndex, load_index, save_index
    >>> X = np.random.default_rng(0).normal(size=(50, 4))
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = save_index(IVFIndex(n_lists=3, random_state=0).fit(X), tmp)
    ...     load_index(tmp, verify=False).n_samples_
    50
    """
    return open_directory(path, partial(read_index_files, mmap=mmap),
                          kinds=("index", "estimator"), verify=verify)


def write_index_files(index, directory):
    """Write the files of ``index`` into the existing ``directory``."""
    state = dict(index.__dict__)
    forest = state.pop("_annoy", None)
    arrays = [k for k, v in state.items() if isinstance(v, np.ndarray)]
    for name in arrays:
        np.save(directory / f"index.{name}.npy", np.ascontiguousarray(state.pop(name)))
    if forest is not None:
        forest.save(str(directory / _ANNOY))
    with open(directory / _STATE, "wb") as fh:
        pickle.dump({"class": type(index), "state": state, "arrays": arrays,
                     "annoy": forest is not None}, fh, protocol=pickle.HIGHEST_PROTOCOL)


def read_index_files(directory, *, mmap=True):
    """Read an index written by :func:`write_index_files` (files already checked)."""
    with open(directory / _STATE, "rb") as fh:
        saved = pickle.load(fh)
    index = saved["class"].__new__(saved["class"])
    index.__dict__.update(saved["state"])
    for name in saved["arrays"]:
        setattr(index, name,
                np.load(directory / f"index.{name}.npy", mmap_mode="r" if mmap else None))
    if saved["annoy"]:
        forest = _new_annoy(index.n_features_, index.metric)
        forest.load(str(directory / _ANNOY), prefault=not mmap)
        index._annoy = forest
    _check_sizes(index, directory)
    return index


def _check_sizes(index, directory):
    """Refuse an index whose parts disagree on the number of points."""
    n = index.n_samples_
    held = [(f"index.{name}.npy", len(getattr(index, name))) for name in _PER_POINT
            if getattr(index, name, None) is not None]
    if getattr(index, "_annoy", None) is not None:
        held.append((_ANNOY, index._annoy.get_n_items()))
    expected = {}
    if getattr(index, "_hnsw", None) is not None:
        # The graph holds one node per group of equal vectors.
        held.append((_STATE, index._hnsw.get_current_count()))
        expected[_STATE] = getattr(index, "n_nodes_", n)
    for file, count in held:
        if count != expected.get(file, n):
            raise ValueError(
                f"{directory / file} holds {count} points but the index records "
                f"{expected.get(file, n)}: "
                "the save is inconsistent; refusing to load it."
            )


# -- an estimator that owns an index (SemanticSearch) --------------------------------
def save_search(estimator, path):
    """Save an estimator that owns an index, the index in its own files.

    The storage behind :meth:`sksemantic.search.SemanticSearch.save`: the index is
    written in its own file formats, the rest of the estimator pickled, and the save
    made current atomically, with the sizes and checksums :func:`load_search` checks.
    The estimator itself is not modified.

    Parameters
    ----------
    estimator : BaseIndexedEstimator
        A fitted estimator with an ``index_``.
    path : str or path-like
        A directory, created if missing; it may be empty or hold earlier saves, and
        anything else there is refused with a :class:`FileExistsError`.

    Returns
    -------
    path : pathlib.Path
        The directory written.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from sksemantic.neighbors import load_search, save_search
    >>> from sksemantic.search import SemanticSearch
    >>> X = np.random.default_rng(0).normal(size=(20, 4))
    >>> search = SemanticSearch(algorithm="brute").fit(X)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = save_search(search, tmp)
    ...     loaded = load_search(SemanticSearch, tmp, mmap=False)
    >>> loaded.n_samples_fit_
    20
    """
    def write(directory):
        write_index_files(estimator.index_, directory)
        # A shallow copy without the index: whatever else the estimator holds is
        # pickled, and the estimator itself is never modified (it may be serving).
        rest = copy.copy(estimator)
        del rest.index_
        with open(directory / _ESTIMATOR, "wb") as fh:
            pickle.dump(rest, fh, protocol=pickle.HIGHEST_PROTOCOL)

    return save_directory(path, write, kind="estimator")


def load_search(cls, path, *, mmap=True, verify=True):
    """Open an estimator written by :func:`save_search`.

    The files are checked against the recorded sizes (and checksums) before anything
    is unpickled; only load files you trust, as with :func:`pickle.load`.

    Parameters
    ----------
    cls : type
        The class expected; a save of another class raises a :class:`TypeError`.
    path : str or path-like
        The directory given to :func:`save_search`.
    mmap : bool, default=True
        Memory-map the index instead of reading it into memory.
    verify : bool, default=True
        Check every file's checksum (reads each file once); the sizes are checked
        either way.

    Returns
    -------
    estimator : cls
        The saved estimator, its ``index_`` restored.

    Examples
    --------
    >>> import tempfile
    >>> import numpy as np
    >>> from sksemantic.neighbors import load_search, save_search
    >>> from sksemantic.search import SemanticSearch
    >>> X = np.random.default_rng(0).normal(size=(20, 4))
    >>> search = SemanticSearch(algorithm="brute").fit(X)
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     _ = save_search(search, tmp)
    ...     loaded = load_search(SemanticSearch, tmp, mmap=False)
    ...     ids = loaded.kneighbors(X[:2], 1, return_distance=False)
    >>> ids
    array([[0],
           [1]])
    """
    def read(directory):
        with open(directory / _ESTIMATOR, "rb") as fh:
            est = pickle.load(fh)
        if not isinstance(est, cls):
            raise TypeError(f"{path} holds a {type(est).__name__}, not a {cls.__name__}.")
        est.index_ = read_index_files(directory, mmap=mmap)
        if est.n_samples_fit_ != est.index_.n_samples_:
            raise ValueError(
                f"{directory / _ESTIMATOR} records {est.n_samples_fit_} items but its index "
                f"holds {est.index_.n_samples_}: the save is inconsistent; refusing to load it."
            )
        return est

    return open_directory(path, read, kinds=("estimator",), verify=verify, what=cls.__name__)
