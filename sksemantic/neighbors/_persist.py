"""Saving an index to a directory and opening it memory-mapped.

Pickling copies every array into the pickle; a served index should instead be opened
from disk without reading it: the arrays go to ``.npy`` files opened with
``np.load(mmap_mode="r")`` and an annoy forest to its own file, which annoy maps.
Pages are then read on demand and shared between processes that open the same files.
An HNSW graph has no mapped format: it is pickled with the rest of the state and read
into memory on load (its vectors for re-scoring are ``.npy`` files like any array).
"""

import pickle
from pathlib import Path

import numpy as np

from ._annoy import _new_annoy

__all__ = ["load_index", "save_index"]

_STATE = "index.pkl"
_ANNOY = "index.ann"


def save_index(index, path):
    """Write a fitted index to the directory ``path`` (created if needed).

    Parameters
    ----------
    index : BaseIndex
        A fitted index.
    path : str or path-like
        Directory to write to.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = dict(index.__dict__)
    forest = state.pop("_annoy", None)
    arrays = [k for k, v in state.items() if isinstance(v, np.ndarray)]
    for name in arrays:
        np.save(path / f"index.{name}.npy", np.ascontiguousarray(state.pop(name)))
    if forest is not None:
        forest.save(str(path / _ANNOY))
    with open(path / _STATE, "wb") as fh:
        pickle.dump({"class": type(index), "state": state, "arrays": arrays,
                     "annoy": forest is not None}, fh)


def load_index(path, *, mmap=True):
    """Open an index written by :func:`save_index`.

    With ``mmap=True`` the arrays are read-only memory maps and the annoy forest is
    mapped by annoy itself: nothing is read until a query touches it. Adding points to
    such an index builds new in-memory arrays and leaves the files untouched.

    Parameters
    ----------
    path : str or path-like
        Directory written by :func:`save_index`.
    mmap : bool, default=True
        Map the arrays from disk instead of reading them into memory.

    Returns
    -------
    index : BaseIndex
        The fitted index, of the class that was saved.
    """
    path = Path(path)
    with open(path / _STATE, "rb") as fh:
        saved = pickle.load(fh)
    index = saved["class"].__new__(saved["class"])
    index.__dict__.update(saved["state"])
    for name in saved["arrays"]:
        setattr(index, name, np.load(path / f"index.{name}.npy", mmap_mode="r" if mmap else None))
    if saved["annoy"]:
        forest = _new_annoy(index.n_features_, index.metric)
        forest.load(str(path / _ANNOY), prefault=not mmap)
        index._annoy = forest
    return index
