"""RQVAEEncoder: training recipe, determinism, devices, persistence, errors."""

import pickle
import warnings
from unittest import mock

import joblib
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

torch = pytest.importorskip("torch")
pytest.importorskip("skorch")

from skorch.exceptions import DeviceWarning  # noqa: E402

from sksemantic.quantization import RQVAEEncoder  # noqa: E402
from sksemantic.quantization._torch_modules import (  # noqa: E402
    ResidualQuantizer,
    rotation_trick,
    straight_through,
)
from tests._helpers import blobs, run_python  # noqa: E402

pytestmark = pytest.mark.torch

SMALL_LR = 1e-2
SMALL = dict(
    n_levels=2, n_clusters=8, hidden_dims=(32,), latent_dim=8, max_epochs=6,
    batch_size=64, learning_rate=SMALL_LR, random_state=0,
)


@pytest.fixture(scope="module")
def data():
    return blobs(800, 16, 12, noise=0.5, center_scale=3.0)[0]


# The shared fit trains long enough for its error to reflect training, not the draw:
# after 6 epochs it spans 0.18-0.60 of the baseline over seeds 0-7, after 12 0.17-0.45.
TRAINED = {**SMALL, "max_epochs": 12}


@pytest.fixture(scope="module")
def fitted(data):
    return RQVAEEncoder(**TRAINED).fit(data)


# ---------------------------------------------------------------- interface
def test_transform_inverse_transform_score(fitted, data):
    codes = fitted.transform(data)
    assert codes.shape == (len(data), 2) and codes.dtype == np.int64
    assert codes.min() >= 0 and codes.max() < 8
    recon = fitted.inverse_transform(codes)
    assert recon.shape == data.shape and recon.dtype == np.float32
    mse = np.mean((data - recon) ** 2)
    assert fitted.score(data) == pytest.approx(-mse, rel=1e-5)
    # It learned the structure: far better than predicting the mean.
    baseline = np.mean((data - data.mean(0)) ** 2)
    assert mse < 0.4 * baseline
    assert list(fitted.get_feature_names_out()) == [
        "rqvaeencoder_level0", "rqvaeencoder_level1"
    ]
    assert [cb.shape for cb in fitted.codebooks_] == [(8, 8), (8, 8)]
    assert fitted.n_features_in_ == data.shape[1]
    assert fitted.device_ == "cpu"


def test_fit_transform_equals_fit_then_transform(data):
    a = RQVAEEncoder(**SMALL).fit_transform(data)
    b = RQVAEEncoder(**SMALL).fit(data).transform(data)
    np.testing.assert_array_equal(a, b)


def test_history_records_losses_and_per_level_usage(fitted):
    h = fitted.history_
    assert len(h) == fitted.n_epochs_ == TRAINED["max_epochs"]
    usage = np.array(h[:, "codebook_usage"])
    assert usage.shape == (TRAINED["max_epochs"], TRAINED["n_levels"])
    assert np.all((usage >= 0) & (usage <= 1))
    for key in ("train_loss", "recon_loss", "quant_loss", "min_usage", "n_reset", "dur"):
        assert len(h[:, key]) == len(h)
    # Training reduces the loss; the cosine schedule lowers the learning rate.
    assert h[-1, "train_loss"] < h[0, "train_loss"]
    lrs = h[:, "event_lr"]
    assert all(b < a for a, b in zip(lrs, lrs[1:], strict=False))


def test_codebook_usage_with_default_recipe():
    X = blobs(3000, 24, 40, noise=0.5, center_scale=3.0, seed=1)[0]
    enc = RQVAEEncoder(
        n_levels=3, n_clusters=32, hidden_dims=(64,), latent_dim=8, max_epochs=4,
        batch_size=256, random_state=0,
    ).fit(X)
    assert enc.codebook_usage_.shape == (3,)
    assert np.all(enc.codebook_usage_ >= 0.9), enc.codebook_usage_


# The fixture covers rotation + EMA; these cover the other estimator and update rule.
@pytest.mark.parametrize("gradient, ema_decay", [("ste", 0.99), ("rotation", None)])
def test_gradient_estimators_and_codebook_updates_train(data, gradient, ema_decay):
    enc = RQVAEEncoder(**{**SMALL, "gradient": gradient, "ema_decay": ema_decay}).fit(data)
    h = enc.history_
    assert h[-1, "recon_loss"] < 0.5 * h[0, "recon_loss"]


def test_constant_schedule_and_early_stopping(data):
    enc = RQVAEEncoder(
        **{**SMALL, "max_epochs": 30, "lr_schedule": "constant", "early_stopping": 2, "tol": 0.2}
    ).fit(data)
    # A 20% relative improvement per epoch cannot last 30 epochs.
    assert 3 <= enc.n_epochs_ < 30
    assert enc.net_.optimizer_.param_groups[0]["lr"] == SMALL_LR
    assert "event_lr" not in enc.history_[-1]


def test_uniform_init_and_no_reset_still_works(data):
    enc = RQVAEEncoder(**{**SMALL, "codebook_init": "uniform", "reset_dead_codes": False}).fit(data)
    assert enc.transform(data).shape == (len(data), 2)
    assert all(n == 0 for n in enc.history_[:, "n_reset"])


def test_per_level_n_clusters(data):
    enc = RQVAEEncoder(**{**SMALL, "n_clusters": [4, 16], "max_epochs": 2}).fit(data)
    codes = enc.transform(data)
    assert codes[:, 0].max() < 4 and codes[:, 1].max() < 16
    np.testing.assert_array_equal(enc.n_clusters_, [4, 16])


def test_n_jobs_sets_torch_threads_during_fit_and_encode_then_restores(data, monkeypatch):
    from sksemantic.quantization import _torch_modules

    seen = []
    step = _torch_modules.RQVAENet.train_step

    def spy(self, batch, **kw):
        seen.append(torch.get_num_threads())
        return step(self, batch, **kw)

    monkeypatch.setattr(_torch_modules.RQVAENet, "train_step", spy)
    before = torch.get_num_threads()
    target = 2 if before == 1 else 1
    enc = RQVAEEncoder(**{**SMALL, "max_epochs": 1, "n_jobs": target}).fit(data)
    assert seen and set(seen) == {target}
    assert torch.get_num_threads() == before
    encoder = enc.net_.module_.encoder
    calls = []
    hook = encoder.register_forward_hook(lambda *a: calls.append(torch.get_num_threads()))
    try:
        enc.transform(data[:5])
    finally:
        hook.remove()
    assert calls == [target] and torch.get_num_threads() == before
    # None leaves torch's setting alone.
    seen.clear()
    RQVAEEncoder(**{**SMALL, "max_epochs": 1}).fit(data)
    assert set(seen) == {before}


# ------------------------------------------------------- training options
# Tiny learning rate, one full batch, codebooks by gradient, no reset: the fitted model
# is the model the first (only) batch saw, up to ~1e-12.
FROZEN = dict(
    max_epochs=1, learning_rate=1e-12, ema_decay=None, reset_dead_codes=False,
    keep_best=False, lr_schedule="constant",
)


@pytest.mark.parametrize("loss, error", [("mse", np.square), ("l1", np.abs)])
def test_reconstruction_loss_logged_is_the_chosen_error(data, loss, error):
    enc = RQVAEEncoder(
        **{**SMALL, **FROZEN, "batch_size": len(data), "reconstruction_loss": loss}
    ).fit(data)
    recon = enc.inverse_transform(enc.transform(data))
    assert enc.history_[-1, "recon_loss"] == pytest.approx(
        float(np.mean(error(data - recon))), rel=1e-4
    )


def test_weight_decay_reaches_adamw_and_shrinks_the_weights(data):
    kw = {**SMALL, "max_epochs": 3}
    plain = RQVAEEncoder(**kw).fit(data)
    decayed = RQVAEEncoder(**kw, weight_decay=5.0).fit(data)
    assert isinstance(decayed.net_.optimizer_, torch.optim.AdamW)
    assert decayed.net_.optimizer_.param_groups[0]["weight_decay"] == 5.0
    assert plain.net_.optimizer_.param_groups[0]["weight_decay"] == 0.0

    def weights(enc):
        return sum(
            float(p.detach().pow(2).sum())
            for name, p in enc.net_.module_.named_parameters()
            if name.endswith("weight")
        )

    assert weights(decayed) < 0.8 * weights(plain)


def _batch_lrs(enc):
    return np.array([b["event_lr"] for epoch in enc.history_[:, "batches"] for b in epoch])


PER_EPOCH = -(-800 // SMALL["batch_size"])  # batches per epoch on `data`


def test_warmup_raises_the_lr_batch_by_batch_then_constant(data):
    enc = RQVAEEncoder(
        **{**SMALL, "max_epochs": 3, "warmup_epochs": 2, "lr_schedule": "constant"}
    ).fit(data)
    lrs = _batch_lrs(enc)
    warm = 2 * PER_EPOCH
    assert len(lrs) == 3 * PER_EPOCH
    np.testing.assert_allclose(lrs[:warm], SMALL_LR * np.arange(1, warm + 1) / warm)
    np.testing.assert_allclose(lrs[warm:], SMALL_LR)
    # The epoch rows record the LR of each epoch's last batch.
    np.testing.assert_allclose(enc.history_[:, "event_lr"], SMALL_LR * np.array([0.5, 1, 1]))


def test_warmup_then_cosine_over_the_remaining_epochs(data):
    enc = RQVAEEncoder(**{**SMALL, "max_epochs": 4, "warmup_epochs": 1}).fit(data)
    lrs = _batch_lrs(enc).reshape(4, PER_EPOCH)
    assert np.all(np.diff(lrs[0]) > 0) and lrs[0, -1] == pytest.approx(SMALL_LR)
    # After the warm-up the LR is constant within an epoch and anneals from the peak.
    assert np.all(lrs[1:] == lrs[1:, :1])
    cosine = 0.01 + 0.99 * 0.5 * (1 + np.cos(np.pi * np.arange(3) / 3))
    np.testing.assert_allclose(lrs[1:, 0], SMALL_LR * cosine)


def test_step_schedule_drops_the_lr_by_the_factor_at_each_step(data):
    enc = RQVAEEncoder(
        **{**SMALL, "max_epochs": 5, "lr_schedule": "step", "lr_step_size": 2, "lr_gamma": 0.1}
    ).fit(data)
    lrs = _batch_lrs(enc).reshape(5, PER_EPOCH)
    expected = SMALL_LR * np.array([1, 1, 0.1, 0.1, 0.01])
    np.testing.assert_allclose(lrs, np.repeat(expected[:, None], PER_EPOCH, axis=1))
    np.testing.assert_allclose(enc.history_[:, "event_lr"], lrs[:, -1])


def test_schedules_pickle_with_the_model(data):
    enc = RQVAEEncoder(
        **{**SMALL, "max_epochs": 2, "warmup_epochs": 1, "lr_schedule": "step"}
    ).fit(data)
    again = pickle.loads(pickle.dumps(enc))
    np.testing.assert_array_equal(again.transform(data), enc.transform(data))


# RQ-KMeans+ start: codebooks on the input space, so latent_dim == n_features.
PLUS = {**SMALL, "latent_dim": 16}


def _rqkmeans(data, **kw):
    from sksemantic.quantization import RQKMeansEncoder

    return RQKMeansEncoder(n_levels=2, n_clusters=8, random_state=0, **kw).fit(data)


def _first_epoch_codebooks(monkeypatch):
    from sksemantic.quantization import _torch_modules

    seen = []
    begin = _torch_modules.CodebookUsage.on_epoch_begin

    def spy(self, net, **kw):
        if not seen:
            seen.extend(cb.detach().cpu().numpy().copy() for cb in net.module_.quantizer.codebooks)
        return begin(self, net, **kw)

    monkeypatch.setattr(_torch_modules.CodebookUsage, "on_epoch_begin", spy)
    return seen


def test_codebooks_start_as_the_given_arrays(data, monkeypatch):
    seen = _first_epoch_codebooks(monkeypatch)
    rng = np.random.default_rng(1)
    books = [rng.normal(size=(8, 16)), rng.normal(size=(8, 16)) * 0.1]
    RQVAEEncoder(**{**PLUS, "max_epochs": 1, "codebook_init": books}).fit(data)
    assert len(seen) == 2
    for got, given in zip(seen, books, strict=True):
        np.testing.assert_array_equal(got, given.astype(np.float32))


def test_codebook_init_from_rqkmeans_starts_from_its_codes(data, monkeypatch):
    rqk = _rqkmeans(data)
    seen = _first_epoch_codebooks(monkeypatch)
    enc = RQVAEEncoder(**{**PLUS, **FROZEN, "codebook_init": rqk}).fit(data)
    for got, cb in zip(seen, rqk.codebooks_, strict=True):
        np.testing.assert_array_equal(got, cb.astype(np.float32))
    # The encoder starts as the identity: the codes are RQ-KMeans's.
    np.testing.assert_allclose(enc._latent(data), data, atol=1e-6)
    assert np.mean(enc.transform(data) == rqk.transform(data)) > 0.99


def test_codebook_init_with_an_unfitted_rqkmeans_fits_a_clone(data, monkeypatch):
    from sksemantic.quantization import RQKMeansEncoder

    seen = _first_epoch_codebooks(monkeypatch)
    given = RQKMeansEncoder(n_levels=2, n_clusters=8, random_state=0)
    enc = RQVAEEncoder(**{**PLUS, "max_epochs": 1, "codebook_init": given}).fit(data)
    assert not hasattr(given, "codebooks_")  # the parameter is left untouched
    for got, cb in zip(seen, _rqkmeans(data).codebooks_, strict=True):
        np.testing.assert_array_equal(got, cb.astype(np.float32))
    # clone() keeps the option working (it unfits nested estimators).
    assert clone(enc).fit(data).n_epochs_ == 1


def test_codebook_init_errors(data):
    rqk = _rqkmeans(data)
    books = [cb.copy() for cb in rqk.codebooks_]
    with pytest.raises(ValueError, match="latent_dim must equal n_features=16"):
        RQVAEEncoder(**{**PLUS, "latent_dim": 8, "codebook_init": rqk}).fit(data)
    with pytest.raises(ValueError, match="has 1 codebooks but n_levels=2"):
        RQVAEEncoder(**{**PLUS, "codebook_init": books[:1]}).fit(data)
    with pytest.raises(ValueError, match=r"codebook 1 has shape \(5, 16\).*\(8, 16\)"):
        RQVAEEncoder(**{**PLUS, "codebook_init": [books[0], books[1][:5]]}).fit(data)
    with pytest.raises(ValueError, match=r"codebook 0 has shape \(8, 16\).*\(4, 16\)"):
        RQVAEEncoder(**{**PLUS, "n_clusters": [4, 8], "codebook_init": rqk}).fit(data)
    with pytest.raises(ValueError, match="fitted on 16 features, but X has 12"):
        RQVAEEncoder(**{**PLUS, "latent_dim": 12, "codebook_init": rqk}).fit(data[:, :12])
    bad = [books[0].copy(), books[1]]
    bad[0][2, 3] = np.nan
    with pytest.raises(ValueError, match=r"codebook_init\[0\] contains NaN"):
        RQVAEEncoder(**{**PLUS, "codebook_init": bad}).fit(data)
    with pytest.raises(ValueError, match="codebook_init"):
        RQVAEEncoder(**{**PLUS, "codebook_init": "kmean"}).fit(data)
    with pytest.raises(ValueError, match="codebook_init"):
        RQVAEEncoder(**{**PLUS, "codebook_init": np.zeros((8, 16))}).fit(data)


def test_training_option_errors(data):
    for bad in (
        {"reconstruction_loss": "huber"},
        {"lr_schedule": "linear"},
        {"weight_decay": -0.1},
        {"warmup_epochs": -1},
        {"lr_step_size": 0},
        {"lr_gamma": 0.0},
        {"lr_gamma": 1.5},
    ):
        (name,) = bad
        with pytest.raises(ValueError, match=name):
            RQVAEEncoder(**{**SMALL, **bad}).fit(data)
    with pytest.raises(ValueError, match="warmup_epochs=6 must be smaller than max_epochs=6"):
        RQVAEEncoder(**{**SMALL, "warmup_epochs": 6}).fit(data)


# -------------------------------------------------------------- modules
def test_rotation_trick_value_and_gradient():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(5, 4, generator=g, requires_grad=True)
    q = torch.randn(5, 4, generator=g)
    out = rotation_trick(z, q)
    torch.testing.assert_close(out, q, atol=1e-5, rtol=1e-5)
    grad_out = torch.randn(5, 4, generator=g)
    (out * grad_out).sum().backward()
    rot_grad = z.grad.clone()
    z.grad = None
    (straight_through(z, q) * grad_out).sum().backward()
    torch.testing.assert_close(z.grad, grad_out)  # STE copies the gradient
    assert not torch.allclose(rot_grad, grad_out)  # the rotation changes it
    # The rotation keeps the gradient's norm up to the |q|/|z| rescaling.
    scale = (q.norm(dim=1) / z.detach().norm(dim=1))
    torch.testing.assert_close(rot_grad.norm(dim=1), grad_out.norm(dim=1) * scale)


def test_dead_code_reset_reseeds_unused_codewords():
    quant = ResidualQuantizer([4], 3)
    with torch.no_grad():
        quant.codebooks[0].copy_(torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [50, 50, 50]]))
    quant.train()
    z = torch.tensor([[0.1, 0, 0], [0.9, 0, 0], [0, 1.1, 0], [0, 0.9, 0]])
    quant(z)
    assert quant.window_counts_0.tolist() == [1, 1, 2, 0]
    n_reset = quant.reset_dead_codes(torch.Generator().manual_seed(0))
    assert n_reset == [1]
    # The far-away codeword 3 now sits on one of the batch's rows.
    assert torch.isclose(quant.codebooks[0][3][None, :], z).all(1).any()
    assert quant.window_counts_0.sum() == 0


def test_losses_are_mean_squared_errors_per_coordinate():
    from types import SimpleNamespace

    from sksemantic.quantization._torch_modules import RQVAENet

    quant = ResidualQuantizer([2], 3, beta=0.5, ema_decay=None)
    with torch.no_grad():
        quant.codebooks[0].copy_(torch.tensor([[0.0, 0, 0], [4, 4, 4]]))
    z = torch.tensor([[1.0, 0, 0], [3, 4, 6], [0, 2, 0], [5, 5, 5]])
    q = torch.tensor([[0.0, 0, 0], [4, 4, 4], [0, 0, 0], [4, 4, 4]])
    _, codes, loss = quant(z)
    assert codes[:, 0].tolist() == [0, 1, 0, 1]
    # codebook term + beta * commitment, both the per-coordinate mean of (z - q)^2.
    torch.testing.assert_close(loss, 1.5 * ((z - q) ** 2).mean())
    X = torch.arange(12.0).reshape(3, 4)
    x_hat = X + torch.tensor([[1.0, 0, 0, 0], [0, 2, 0, 0], [0, 0, 0, 3]])
    net = SimpleNamespace(quantization_weight=2.0, reconstruction_loss="mse")
    total = RQVAENet.get_loss(net, (x_hat, None, torch.tensor(0.25)), None, X=X)
    torch.testing.assert_close(total, torch.tensor(14 / 12 + 0.5))


def test_keep_best_restores_the_epoch_with_fewest_monitor_collisions(data):
    kw = {**SMALL, "n_clusters": 4, "max_epochs": 6}
    enc = RQVAEEncoder(**kw).fit(data)
    rates = enc.history_[:, "monitor_collisions"]
    assert len(rates) == enc.n_epochs_ == 6
    # The later epoch wins ties.
    expected = max(i for i, r in enumerate(rates) if r == min(rates)) + 1
    assert enc.best_epoch_ == expected
    # With fewer rows than the monitor sample, the monitor is the data itself: the
    # kept model's codes collide exactly as the best epoch's did.
    codes = enc.transform(data)
    rate = 1 - len(np.unique(codes, axis=0)) / len(data)
    assert rate == pytest.approx(min(rates), abs=2 / len(data))
    # The monitor sample and the saved state are not kept in the fitted net.
    best = dict(enc.net_.callbacks_)["best_collisions"]
    assert best.X_ is None and best.best_state_ is None
    last = RQVAEEncoder(**{**kw, "keep_best": False}).fit(data)
    assert last.best_epoch_ == last.n_epochs_ == 6
    assert "monitor_collisions" not in last.history_[-1]
    # The monitor only watches: training is the same with and without it.
    assert last.history_[:, "train_loss"] == enc.history_[:, "train_loss"]
    if enc.best_epoch_ < 6:  # a different model from the last epoch's
        assert not torch.equal(
            enc.net_.module_.encoder[0].weight, last.net_.module_.encoder[0].weight
        )


# ------------------------------------------------------------ semantic IDs
def test_ids_and_uniqueness_policies(fitted, data):
    from sksemantic.ids import SemanticIdAssigner

    codes = fitted.transform(data)
    ids = fitted.to_ids(data)
    np.testing.assert_array_equal(fitted.from_ids(ids), codes)
    # The last-level costs are this encoder's latent distances: their argmin is the code.
    costs = fitted.last_level_costs(data, codes)
    assert costs.shape == (len(data), 8) and np.all(np.isfinite(costs))
    np.testing.assert_array_equal(np.argmin(costs, axis=1), codes[:, -1])
    # 8 x 8 = 64 codes for 800 rows: plenty of collisions. Re-encoding needs at most 8
    # items per first-level prefix: take up to 6 rows of each.
    rows = np.concatenate([np.flatnonzero(codes[:, 0] == c)[:6] for c in range(8)])
    n = len(rows)
    assert len(np.unique(codes[rows], axis=0)) < n
    for policy in ("nearest_free", "sinkhorn"):
        out = SemanticIdAssigner(fitted, uniqueness=policy).assign(data[rows], keys=rows)
        assert out.shape == (n, 2) and len(np.unique(out, axis=0)) == n
        # Items keep their first-level code; only the last level moves.
        np.testing.assert_array_equal(out[:, 0], codes[rows, 0])
    out = SemanticIdAssigner(fitted, uniqueness="counter").assign(data, keys=range(len(data)))
    assert out.shape == (len(data), 3) and len(np.unique(out, axis=0)) == len(data)


# ---------------------------------------------------------- determinism
def test_same_seed_same_model_global_rng_untouched(data):
    torch_state = torch.random.get_rng_state()
    np_state = np.random.get_state()[1].copy()  # noqa: NPY002 (checked to be untouched)
    a = RQVAEEncoder(**SMALL).fit(data)
    assert torch.equal(torch_state, torch.random.get_rng_state())
    np.testing.assert_array_equal(np_state, np.random.get_state()[1])  # noqa: NPY002
    b = RQVAEEncoder(**SMALL).fit(data)
    for pa, pb in zip(
        a.net_.module_.state_dict().values(), b.net_.module_.state_dict().values(), strict=True
    ):
        assert torch.equal(pa, pb)
    np.testing.assert_array_equal(a.transform(data), b.transform(data))
    c = RQVAEEncoder(**{**SMALL, "random_state": 1, "max_epochs": 1}).fit(data)
    assert not torch.equal(
        a.net_.module_.encoder[0].weight, c.net_.module_.encoder[0].weight
    )


# ------------------------------------------------------------ persistence
_LOAD_SCRIPT = """
import sys, joblib, numpy as np
est = joblib.load(sys.argv[1])
np.save(sys.argv[3], est.transform(np.load(sys.argv[2])))
"""


def test_joblib_round_trip_in_new_process(fitted, data, tmp_path):
    joblib.dump(fitted, tmp_path / "enc.joblib")
    np.save(tmp_path / "X.npy", data)
    run_python("-c", _LOAD_SCRIPT, tmp_path / "enc.joblib", tmp_path / "X.npy",
               tmp_path / "codes.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "codes.npy"), fitted.transform(data))


def test_gpu_trained_model_loads_and_encodes_on_cpu(data):
    enc = RQVAEEncoder(**{**SMALL, "max_epochs": 2}).fit(data)
    expected = enc.transform(data)
    expected_recon = enc.inverse_transform(expected)
    # Make it look trained on a GPU: the net and the estimator say "cuda", and every
    # tensor is serialised with a CUDA location tag, as torch does for GPU storages.
    enc.net_.device = "cuda"
    enc.device_ = "cuda"
    with mock.patch("torch.serialization.location_tag", lambda storage: "cuda:0"):
        blob = pickle.dumps(enc)
    assert b"cuda:0" in blob
    with mock.patch("torch.cuda.is_available", lambda: False):
        with pytest.warns(DeviceWarning):
            loaded = pickle.loads(blob)
        assert loaded.device_ == "cpu"
        assert next(loaded.net_.module_.parameters()).device.type == "cpu"
        np.testing.assert_array_equal(loaded.transform(data), expected)
        np.testing.assert_array_equal(loaded.inverse_transform(expected), expected_recon)


def test_cuda_requested_without_cuda_is_a_clear_error(data):
    with mock.patch("torch.cuda.is_available", lambda: False):
        with pytest.raises(ValueError, match="no cuda device"):
            RQVAEEncoder(**{**SMALL, "device": "cuda"}).fit(data)
    with pytest.raises(ValueError, match="device must be"):
        RQVAEEncoder(**{**SMALL, "device": "abacus"}).fit(data)
    with mock.patch("torch.cuda.is_available", lambda: False):
        enc = RQVAEEncoder(**{**SMALL, "device": "auto", "max_epochs": 1}).fit(data)
    assert enc.device_ == "cpu"


# ------------------------------------------------------------ sklearn use
def test_clone_pipeline_and_grid_search(data, fitted):
    unfitted = clone(fitted)
    assert not hasattr(unfitted, "net_")
    assert unfitted.get_params() == fitted.get_params()
    pipe = make_pipeline(StandardScaler(), RQVAEEncoder(**{**SMALL, "max_epochs": 2}))
    assert pipe.fit_transform(data).shape == (len(data), 2)
    search = GridSearchCV(
        RQVAEEncoder(**{**SMALL, "max_epochs": 3}), {"latent_dim": [1, 8]}, cv=2
    ).fit(data[:400])
    # Score is the negative reconstruction error, so the larger latent space wins.
    assert search.best_params_ == {"latent_dim": 8}


# ------------------------------------------------------------- bad input
def test_bad_input_errors(fitted, data):
    bad = data.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        RQVAEEncoder(**SMALL).fit(bad)
    with pytest.raises(ValueError, match="n_clusters=64 exceeds n_samples=20"):
        RQVAEEncoder(**{**SMALL, "n_clusters": 64}).fit(data[:20])
    with pytest.raises(ValueError, match="one per level"):
        RQVAEEncoder(**{**SMALL, "n_clusters": [4, 4, 4]}).fit(data)
    with pytest.raises(ValueError, match="hidden_dims"):
        RQVAEEncoder(**{**SMALL, "hidden_dims": (8, -1)}).fit(data)
    with pytest.raises(ValueError, match="n_levels"):
        RQVAEEncoder(**{**SMALL, "n_levels": 0}).fit(data)
    with pytest.raises(ValueError, match="features"):
        fitted.transform(data[:, :5])
    codes = fitted.transform(data[:4])
    codes[2, 1] = 8
    with pytest.raises(ValueError, match=r"codes\[2, 1\] = 8, but level 1 has codes 0..7"):
        fitted.inverse_transform(codes)
    with pytest.raises(ValueError, match="expected 2"):
        fitted.inverse_transform(codes[:, :1])
    with pytest.raises(TypeError, match="integers"):
        fitted.inverse_transform(codes + 0.5)


def test_warnings_free_fit(data):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RQVAEEncoder(**{**SMALL, "max_epochs": 1}).fit(data)
