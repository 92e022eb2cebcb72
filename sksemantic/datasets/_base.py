"""Loaders for the corpora in ``sksemantic/datasets/data`` (made by tools/make_datasets.py)."""

import json
from importlib import resources

import numpy as np
from sklearn.utils import Bunch

__all__ = ["get_data_path", "load_debian_packages", "load_wordnet_queries"]

_DEBIAN_DESCR = """\
Debian package descriptions
---------------------------
3,000 one-line descriptions of Debian bookworm packages (package names are not in
the text), embedded with all-MiniLM-L6-v2 (384 dimensions, L2-normalised).

- ``target``: the Debian section (57 names in ``target_names``), a topic label;
- ``groups``: the source package. Packages built from one source ("libfoo1",
  "libfoo-dev", "foo-doc") are natural near-duplicates: the corpus holds whole
  source groups (1,473 groups, 437 with more than one package), ground truth for
  deduplication and communities. It is imperfect: generic descriptions such as
  "transitional package" recur across sources.

Source: Debian bookworm package metadata; each description is distributed under
its package's DFSG-free licence.
"""

_WORDNET_DESCR = """\
WordNet known-item queries
--------------------------
2,000 WordNet 3.0 synsets (a seeded random sample), embedded with
all-MiniLM-L6-v2 (384 dimensions, L2-normalised).

- ``data`` / ``texts``: the definitions (glosses), the documents to search;
- ``query_data`` / ``queries``: the synset's lemmas ("range, mountain range,
  chain, ..."): query i should retrieve document i (known-item search);
- ``target``: the lexicographer file (45 topics such as noun.animal).

Source: WordNet 3.0 (Princeton University), BSD-style licence, see
``data/README.md``.
"""


def get_data_path():
    """Directory holding the shipped data files.

    Returns
    -------
    path : pathlib.Path
        The ``data`` directory of :mod:`sksemantic.datasets`.

    Examples
    --------
    >>> from sksemantic.datasets import get_data_path
    >>> (get_data_path() / "debian_packages.npz").is_file()
    True
    """
    from pathlib import Path

    return Path(str(resources.files("sksemantic.datasets") / "data"))


def _load(name):
    path = get_data_path()
    with np.load(path / f"{name}.npz") as npz:
        arrays = {key: npz[key] for key in npz.files}
    info = json.loads((path / f"{name}.json").read_text(encoding="utf-8"))
    return arrays, info


def load_debian_packages(*, return_X_y=False):
    """Load 3,000 Debian package descriptions with their embeddings.

    Read more in the :ref:`User Guide <datasets>`.

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(data, groups)`` instead of a Bunch: the embeddings and the
        near-duplicate group of each row.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes:

        data : ndarray of shape (3000, 384), float32
            The embeddings, L2-normalised.
        texts : list of str
            The one-line descriptions.
        target : ndarray of shape (3000,), int64
            The Debian section of each package, an index into ``target_names``.
        target_names : ndarray of shape (57,), object
            The section names.
        groups : ndarray of shape (3000,), int64
            The source-package group, numbered from 0 in order of first appearance.
        packages, sources : list of str
            Binary and source package names.
        DESCR : str
            Description of the corpus.
    (data, groups) : tuple if ``return_X_y`` is True

    See Also
    --------
    load_wordnet_queries : Definitions with known-item queries, for search evaluation.

    Examples
    --------
    >>> from sksemantic.datasets import load_debian_packages
    >>> corpus = load_debian_packages()
    >>> corpus.data.shape, corpus.data.dtype
    ((3000, 384), dtype('float32'))
    >>> len(corpus.texts) == len(corpus.groups) == len(corpus.target) == 3000
    True
    >>> corpus.target_names[corpus.target[0]] in set(corpus.target_names)
    True
    """
    arrays, info = _load("debian_packages")
    X = arrays["embeddings"].astype(np.float32)
    groups = arrays["groups"].astype(np.int64)
    if return_X_y:
        return X, groups
    return Bunch(
        data=X,
        texts=info["texts"],
        target=arrays["labels"].astype(np.int64),
        target_names=np.array(info["label_names"], dtype=object),
        groups=groups,
        packages=info["packages"],
        sources=info["sources"],
        DESCR=_DEBIAN_DESCR,
    )


def load_wordnet_queries(*, return_X_y=False):
    """Load 2,000 WordNet definitions with known-item queries, all embedded.

    Query ``i`` (the synset's lemmas) should retrieve document ``i`` (its
    definition): a real relevance judgement for evaluating search.

    Read more in the :ref:`User Guide <datasets>`.

    Parameters
    ----------
    return_X_y : bool, default=False
        Return ``(data, query_data)`` instead of a Bunch: the document and query
        embeddings, row-aligned.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes:

        data : ndarray of shape (2000, 384), float32
            Embeddings of the definitions (the documents).
        texts : list of str
            The definitions.
        query_data : ndarray of shape (2000, 384), float32
            Embeddings of the queries.
        queries : list of str
            The queries: the synset's lemmas, comma-separated.
        target : ndarray of shape (2000,), int64
            The lexicographer file (topic) of each synset.
        target_names : ndarray of shape (45,), object
            The topic names.
        synsets : list of str
            WordNet 3.0 synset ids (offset and part of speech).
        DESCR : str
            Description of the corpus.
    (data, query_data) : tuple if ``return_X_y`` is True

    See Also
    --------
    load_debian_packages : Package descriptions with near-duplicate groups.

    Examples
    --------
    >>> from sksemantic.datasets import load_wordnet_queries
    >>> wn = load_wordnet_queries()
    >>> wn.data.shape == wn.query_data.shape == (2000, 384)
    True
    >>> len(wn.queries), len(wn.texts)
    (2000, 2000)
    """
    arrays, info = _load("wordnet_queries")
    X = arrays["embeddings"].astype(np.float32)
    Q = arrays["query_embeddings"].astype(np.float32)
    if return_X_y:
        return X, Q
    return Bunch(
        data=X,
        texts=info["texts"],
        query_data=Q,
        queries=info["queries"],
        target=arrays["labels"].astype(np.int64),
        target_names=np.array(info["label_names"], dtype=object),
        synsets=info["synsets"],
        DESCR=_WORDNET_DESCR,
    )
