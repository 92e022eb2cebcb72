import numpy as np
import pytest

from sksemantic.__main__ import main
from tests._helpers import blobs


class Run:
    """Result of one ``sksemantic`` call made in-process."""

    def __init__(self, code, out, err):
        self.code, self.out, self.err = code, out, err
        self.err_lines = err.splitlines()


@pytest.fixture
def run(capsys):
    """Call ``main(argv)``; exit status, stdout and stderr (SystemExit caught)."""

    def _run(*argv):
        capsys.readouterr()
        try:
            code = main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        return Run(code, out, err)

    return _run


@pytest.fixture
def emb(tmp_path):
    """A small clustered embeddings file; returns its path."""
    X, _ = blobs(n_samples=120, n_features=8)
    path = tmp_path / "emb.npy"
    np.save(path, X)
    return path
