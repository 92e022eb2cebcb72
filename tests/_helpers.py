"""Helpers shared by the tests: generated data, optional backends and new processes.

Test modules import them as ``from tests._helpers import ...`` (``tests`` is a package;
pytest puts the checkout on ``sys.path``, see ``pythonpath`` in pyproject.toml).
"""

import importlib.util
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

#: The checkout these tests belong to.
ROOT = pathlib.Path(__file__).resolve().parents[1]

#: hnswlib (the ``hnsw`` extra) is optional: its tests are skipped without it.
HAS_HNSWLIB = importlib.util.find_spec("hnswlib") is not None
needs_hnswlib = pytest.mark.skipif(not HAS_HNSWLIB, reason="needs hnswlib (the hnsw extra)")
#: "hnsw" as a parameter of tests that run every backend.
HNSW = pytest.param("hnsw", marks=needs_hnswlib)


def blobs(n_samples=600, n_features=32, n_centers=12, *, noise=0.35, center_scale=1.0,
          seed=0, center_seed=None, dtype=np.float32, normalize=False):
    """Gaussian blobs: points around random centres, the neighbour structure embeddings have.

    Parameters
    ----------
    n_samples, n_features, n_centers : int
        Shape of the data and number of centres.
    noise : float
        Standard deviation of the points around their centre.
    center_scale : float
        Standard deviation of the centres around the origin.
    seed : int
        Seed of the whole draw.
    center_seed : int or None
        Seed of the centres alone (the labels and noise then come from ``seed``): draws
        with different ``seed`` are then samples of one distribution. None: from ``seed``.
    dtype : dtype
        Of the returned points (computed in float64).
    normalize : bool
        Scale each row to unit L2 norm.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
    labels : ndarray of shape (n_samples,)
        The centre of each row.

    Examples
    --------
    >>> X, labels = blobs(100, 8, 4, seed=1)
    >>> X.shape, X.dtype.name, int(labels.max()) < 4
    ((100, 8), 'float32', True)
    >>> X, _ = blobs(10, 3, 2, normalize=True)
    >>> bool(np.allclose(np.linalg.norm(X, axis=1), 1))
    True
    """
    rng = np.random.default_rng(seed)
    center_rng = rng if center_seed is None else np.random.default_rng(center_seed)
    centers = center_scale * center_rng.normal(size=(n_centers, n_features))
    labels = rng.integers(n_centers, size=n_samples)
    X = centers[labels] + noise * rng.normal(size=(n_samples, n_features))
    if normalize:
        X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X.astype(dtype), labels


def child_env(**overrides):
    """The environment of a new Python process that imports this checkout's sksemantic.

    The checkout goes first on ``PYTHONPATH`` (another sksemantic may be installed); the
    rest is this process's environment with ``overrides`` applied (None removes a name).
    """
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = str(value)
    return env


def run_python(*args, env=None, cwd=None, check=True, text=True, timeout=600):
    """Run ``python *args`` in a new process (``-c code``, ``-m module`` or a script).

    Output is captured; ``env`` defaults to :func:`child_env`. With ``check`` a failure
    is a test failure showing the end of the child's stderr. The timeout only keeps a
    hang from blocking the suite.
    """
    proc = subprocess.run(
        [sys.executable, *map(str, args)], env=child_env() if env is None else env,
        cwd=cwd, capture_output=True, text=text, timeout=timeout,
    )
    if check and proc.returncode != 0:
        stderr = proc.stderr if text else proc.stderr.decode(errors="replace")
        pytest.fail(f"the child process exited with {proc.returncode}:\n{stderr[-3000:]}")
    return proc


def record_pool_workers(monkeypatch):
    """A list that gets the worker count of every ``ParallelPool`` made from now on
    (for tests that ``n_jobs`` bounds the threads a call starts)."""
    from sksemantic.utils import _parallel

    workers = []
    start = _parallel.ParallelPool.__init__

    def record(self, *args, **kwargs):
        start(self, *args, **kwargs)
        workers.append(self.n_workers)

    monkeypatch.setattr(_parallel.ParallelPool, "__init__", record)
    return workers
