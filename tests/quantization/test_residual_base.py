"""Shared pieces of the residual encoders: last-level costs, device and n_clusters checks."""

from unittest import mock

import numpy as np
import pytest

from sksemantic.quantization import RQKMeansEncoder
from sksemantic.utils import check_n_clusters_per_level, resolve_device


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).normal(size=(300, 6))


@pytest.fixture(scope="module")
def fitted(X):
    return RQKMeansEncoder(n_levels=3, n_clusters=[5, 4, 6], random_state=0).fit(X)


# ------------------------------------------------------------ last_level_costs
def test_last_level_costs_are_squared_distances_to_the_last_codewords(X, fitted):
    codes = fitted.transform(X)
    costs = fitted.last_level_costs(X, codes)
    assert costs.shape == (len(X), 6)
    cb = fitted.codebooks_
    residual = X - cb[0][codes[:, 0]] - cb[1][codes[:, 1]]
    expected = ((residual[:, None, :] - cb[2][None, :, :]) ** 2).sum(-1)
    np.testing.assert_allclose(costs, expected, rtol=1e-9, atol=1e-9)
    # The argmin is the last-level code, and codes=None means transform(X).
    np.testing.assert_array_equal(costs.argmin(1), codes[:, -1])
    np.testing.assert_array_equal(fitted.last_level_costs(X), costs)


def test_last_level_costs_follow_the_given_prefix(X, fitted):
    codes = fitted.transform(X[:10])
    moved = codes.copy()
    moved[:, 1] = (moved[:, 1] + 1) % 4
    cb = fitted.codebooks_
    residual = X[:10] - cb[0][moved[:, 0]] - cb[1][moved[:, 1]]
    expected = ((residual[:, None, :] - cb[2][None, :, :]) ** 2).sum(-1)
    np.testing.assert_allclose(fitted.last_level_costs(X[:10], moved), expected, rtol=1e-9)


def test_last_level_costs_of_balanced_encoders_subtract_the_offsets(X):
    enc = RQKMeansEncoder(n_levels=2, n_clusters=4, balanced=True, random_state=0).fit(X)
    codes = enc.transform(X)
    costs = enc.last_level_costs(X, codes)
    residual = X - enc.codebooks_[0][codes[:, 0]]
    dist = ((residual[:, None, :] - enc.codebooks_[1][None, :, :]) ** 2).sum(-1)
    np.testing.assert_allclose(costs, dist - enc.balance_offsets_[1], rtol=1e-9, atol=1e-9)
    np.testing.assert_array_equal(costs.argmin(1), codes[:, -1])


def test_last_level_costs_of_one_level_and_bad_input(X):
    enc = RQKMeansEncoder(n_levels=1, n_clusters=3, random_state=0).fit(X)
    Xc = X.copy()
    costs = enc.last_level_costs(Xc)
    np.testing.assert_array_equal(Xc, X)  # the caller's array is not modified
    expected = ((X[:, None, :] - enc.codebooks_[0][None, :, :]) ** 2).sum(-1)
    np.testing.assert_allclose(costs, expected, rtol=1e-9, atol=1e-9)
    with pytest.raises(ValueError, match="codes has 5 rows but X has 4"):
        enc.last_level_costs(X[:4], enc.transform(X[:5]))
    with pytest.raises(ValueError, match="out of range"):
        enc.last_level_costs(X[:1], [[3]])
    with pytest.raises(ValueError, match="features"):
        enc.last_level_costs(X[:, :4])


# ------------------------------------------------------------ shared checks
def test_check_n_clusters_per_level():
    assert check_n_clusters_per_level(8, 3) == [8, 8, 8]
    assert check_n_clusters_per_level(np.array([4, 2]), 2, n_samples=4) == [4, 2]
    assert check_n_clusters_per_level((4, 2), 2) == [4, 2]
    with pytest.raises(ValueError, match="one per level"):
        check_n_clusters_per_level([4, 2], 3)
    with pytest.raises(ValueError, match="one per level"):
        check_n_clusters_per_level([4.5, 2], 2)
    with pytest.raises(ValueError, match="one per level"):
        check_n_clusters_per_level(True, 2)
    with pytest.raises(ValueError, match=">= 1 at every level"):
        check_n_clusters_per_level([4, 0], 2)
    with pytest.raises(ValueError, match="n_clusters=9 exceeds n_samples=5"):
        check_n_clusters_per_level([2, 9], 2, n_samples=5)
    with pytest.raises(ValueError, match="^sizes must"):
        check_n_clusters_per_level([2], 2, name="sizes")


def test_resolve_device():
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="device must be 'auto', 'cpu'"):
        resolve_device("tpu")
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("cuda:first")
    with pytest.raises(TypeError, match="device must be a str"):
        resolve_device(0)
    # Without torch, "auto" is the CPU (numpy), and a GPU asks for the extra.
    with mock.patch(
        "sksemantic.utils._device.import_optional", side_effect=ImportError("no torch")
    ):
        assert resolve_device("auto") == "cpu"
        with pytest.raises(ImportError):
            resolve_device("cuda")


def test_resolve_device_with_torch():
    torch = pytest.importorskip("torch")
    with mock.patch.object(torch.cuda, "is_available", lambda: True), mock.patch.object(
        torch.cuda, "device_count", lambda: 1
    ):
        assert resolve_device("auto") == "cuda"
        assert resolve_device("cuda:0") == "cuda:0"
        with pytest.raises(ValueError, match="has 1 cuda device"):
            resolve_device("cuda:1")
    with mock.patch.object(torch.cuda, "is_available", lambda: False), mock.patch.object(
        torch.backends.mps, "is_available", lambda: False
    ):
        assert resolve_device("auto") == "cpu"
        with pytest.raises(ValueError, match="no cuda device"):
            resolve_device("cuda")
        with pytest.raises(ValueError, match="no mps device"):
            resolve_device("mps")


def test_rqkmeans_accepts_auto_device(X):
    torch = pytest.importorskip("torch")
    with mock.patch.object(torch.cuda, "is_available", lambda: False), mock.patch.object(
        torch.backends.mps, "is_available", lambda: False
    ):
        enc = RQKMeansEncoder(n_levels=2, n_clusters=4, device="auto", random_state=0).fit(X)
        assert enc.device_ == "cpu"
        ref = RQKMeansEncoder(n_levels=2, n_clusters=4, random_state=0).fit(X)
        np.testing.assert_array_equal(enc.transform(X), ref.transform(X))
