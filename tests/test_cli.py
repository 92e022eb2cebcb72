import numpy as np
import pytest
import scipy.sparse as sp

from sksemantic.__main__ import main
from tests.conftest import clustered_embeddings


def test_graph_and_dedup_commands(tmp_path, capsys):
    X, _ = clustered_embeddings(n_samples=200, n_features=16)
    X = np.vstack([X, X[:5]])  # five exact duplicates
    np.save(tmp_path / "emb.npy", X)
    assert main(["graph", str(tmp_path / "emb.npy"), "--out", str(tmp_path / "g.npz"),
                 "--n-neighbors", "5"]) == 0
    G = sp.load_npz(tmp_path / "g.npz")
    assert G.shape == (205, 205) and G.nnz == 205 * 6
    assert main(["dedup", str(tmp_path / "emb.npy"), "--out", str(tmp_path / "l.npy"),
                 "--min-similarity", "0.9999"]) == 0
    labels = np.load(tmp_path / "l.npy")
    assert (labels[200:] == labels[:5]).all()
    assert "groups" in capsys.readouterr().out


def test_bad_embeddings_file_is_a_clear_error(tmp_path):
    np.save(tmp_path / "flat.npy", np.ones(10))
    with pytest.raises(SystemExit, match="must be a 2-d array"):
        main(["graph", str(tmp_path / "flat.npy")])
    with pytest.raises(SystemExit, match="cannot read embeddings"):
        main(["graph", str(tmp_path / "missing.npy")])
