"""Scorers end to end: GridSearchCV, RandomizedSearchCV and cross_validate over pipelines
ending in RQKMeansEncoder or SemanticGraphTransformer, scored on the held-out fold."""

import pickle

import numpy as np
import pytest
from scipy.stats import randint
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA
from sklearn.model_selection import GridSearchCV, KFold, RandomizedSearchCV, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer, StandardScaler

from sksemantic.graph import SemanticGraphTransformer
from sksemantic.metrics import (
    collision_rate,
    encoder_report,
    get_semantic_scorer,
    get_semantic_scorer_names,
    make_encoder_scorer,
    make_graph_scorer,
    quantization_mse,
    recall_at_k,
)
from sksemantic.quantization import RQKMeansEncoder
from tests._helpers import blobs


@pytest.fixture(scope="module")
def X():
    return blobs(240, 16, 12, noise=2.0, center_scale=6.0)[0]


def _scoring():
    return {
        "recall": get_semantic_scorer("recall_at_10"),
        "collision": get_semantic_scorer("neg_collision_rate"),
        "mse": get_semantic_scorer("neg_quantization_mse"),
    }


def _pipe(**params):
    params = {"n_levels": 2, "n_clusters": 4, "random_state": 0} | params
    return make_pipeline(StandardScaler(), RQKMeansEncoder(**params))


def test_grid_search_selects_on_recall_and_reports_collisions(X):
    search = GridSearchCV(
        _pipe(),
        {"rqkmeansencoder__n_clusters": [2, 4, 16]},
        scoring=_scoring(),
        refit="recall",
        cv=3,
        n_jobs=2,
    )
    search.fit(X)
    res = search.cv_results_
    recall = res["mean_test_recall"]
    assert search.best_index_ == int(np.argmax(recall))
    assert search.best_score_ == pytest.approx(recall.max())
    assert np.all((recall > 0) & (recall <= 1))
    # More codewords per level: fewer collisions (neg rate rises) and a smaller error.
    assert np.all(np.diff(res["mean_test_collision"]) > 0)
    assert np.all(np.diff(res["mean_test_mse"]) > 0)
    # Recall of codes on clustered data beats chance (10 of ~79 others) at the best.
    assert recall.max() > 0.3
    # In the worker processes too, each split's score is the held-out fold's.
    train, test = next(KFold(3).split(X))
    for i, params in enumerate(res["params"]):
        est = clone(_pipe()).set_params(**params).fit(X[train])
        assert res["split0_test_recall"][i] == _scoring()["recall"](est, X[test])
        assert res["split0_test_collision"][i] == _scoring()["collision"](est, X[test])
    # The refitted pipeline is usable and scored like any other estimator.
    assert search.best_estimator_.transform(X).shape == (240, 2)


def test_randomized_search(X):
    search = RandomizedSearchCV(
        _pipe(),
        {"rqkmeansencoder__n_clusters": randint(2, 12), "rqkmeansencoder__n_levels": [1, 2]},
        n_iter=4,
        scoring=_scoring(),
        refit="recall",
        cv=2,
        random_state=0,
        n_jobs=2,
    )
    search.fit(X)
    res = search.cv_results_
    assert search.best_score_ == pytest.approx(np.max(res["mean_test_recall"]))
    assert len(res["params"]) == 4
    assert np.all(res["mean_test_collision"] <= 0)


def test_cross_validate_scores_the_held_out_fold(X):
    """Each test score is the scorer applied to the estimator fitted on the training
    fold and the rows of the test fold, nothing else."""
    cv = KFold(3, shuffle=True, random_state=0)
    scoring = _scoring() | {
        "dcor": get_semantic_scorer("distance_correlation"),
        "ndcg": get_semantic_scorer("ndcg_at_10"),
        "cosine": get_semantic_scorer("reconstruction_cosine"),
    }
    out = cross_validate(
        _pipe(n_clusters=6),
        X,
        cv=cv,
        scoring=scoring,
        return_estimator=True,
        return_indices=True,
        return_train_score=True,
    )
    for fold, est in enumerate(out["estimator"]):
        train = out["indices"]["train"][fold]
        test = out["indices"]["test"][fold]
        assert np.intersect1d(train, test).size == 0
        # The fold's estimator is the pipeline fitted on the training rows only.
        refit = clone(_pipe(n_clusters=6)).fit(X[train])
        for a, b in zip(refit[-1].codebooks_, est[-1].codebooks_, strict=True):
            np.testing.assert_array_equal(a, b)
        # Its test score is computed on the test rows (and its train score on the
        # training rows), with the test rows encoded by the fitted model.
        for name, scorer in scoring.items():
            assert out[f"test_{name}"][fold] == scorer(est, X[test])
            assert out[f"train_{name}"][fold] == scorer(est, X[train])
        codes = est.transform(X[test])
        assert out["test_collision"][fold] == -collision_rate(codes)
        assert out["test_recall"][fold] == recall_at_k(X[test], codes, k=10)
        rec = est.inverse_transform(codes)
        assert out["test_mse"][fold] == pytest.approx(-quantization_mse(X[test], rec))
    # Held-out and training scores differ: the test rows are not the training rows.
    assert not np.allclose(out["test_mse"], out["train_mse"])


def test_default_scoring_is_the_encoder_score(X):
    # scoring=None uses RQKMeansEncoder.score (negative MSE), equal to our mse scorer.
    est = _pipe(n_clusters=5).fit(X[:160])
    scorer = make_encoder_scorer("quantization_mse", space="encoder")
    assert scorer(est, X[160:]) == pytest.approx(est.score(X[160:]), rel=1e-5)


def test_pipeline_spaces_with_pca(X):
    pca_pipe = make_pipeline(PCA(n_components=8, random_state=0), RQKMeansEncoder(
        n_levels=2, n_clusters=8, random_state=0
    )).fit(X[:160])
    Xt = X[160:]
    inp = make_encoder_scorer("quantization_mse")(pca_pipe, Xt)
    enc = make_encoder_scorer("quantization_mse", space="encoder")(pca_pipe, Xt)
    # In input space the error adds what PCA drops (orthogonal to the PCA subspace):
    # 16 * mse_input = 8 * mse_encoder + mean squared PCA residual per row.
    pca = pca_pipe[0]
    resid = Xt - pca.inverse_transform(pca.transform(Xt))
    pca_loss = np.mean(np.sum(resid.astype(np.float64) ** 2, axis=1))
    assert -16 * inp == pytest.approx(-8 * enc + pca_loss, rel=1e-4)
    # Recall in encoder space judges against PCA-space neighbours instead of raw ones.
    r_in = make_encoder_scorer("recall_at_k", k=5)(pca_pipe, Xt)
    r_enc = make_encoder_scorer("recall_at_k", k=5, space="encoder")(pca_pipe, Xt)
    codes = pca_pipe.transform(Xt)
    assert r_in == recall_at_k(Xt, codes, k=5)
    assert r_enc == recall_at_k(pca_pipe[0].transform(Xt), codes, k=5)


def test_reconstruction_recall_variants(X):
    est = _pipe(n_clusters=8).fit(X[:160])
    Xt = X[160:]
    by_prefix = get_semantic_scorer("recall_at_5")(est, Xt)
    refined = get_semantic_scorer("reconstruction_recall_at_5")(est, Xt)
    recon_only = make_encoder_scorer("recall_at_k", k=5, rank_by="reconstruction")(est, Xt)
    codes = est.transform(Xt)
    rec = est.inverse_transform(codes)
    assert refined == recall_at_k(Xt, codes, reconstruction=rec, k=5)
    assert recon_only == recall_at_k(Xt, reconstruction=rec, k=5)
    # Ordering the ties of equal prefixes by reconstruction distance helps here.
    assert refined > by_prefix


def test_graph_scorer_in_grid_search():
    X = np.random.default_rng(1).normal(size=(600, 12))  # no clusters: IVF must probe
    grid = [
        {"algorithm": ["brute"]},
        {"algorithm": ["ivf"], "n_probe": [1, 4, 16]},
    ]
    search = GridSearchCV(
        SemanticGraphTransformer(n_neighbors=5, n_lists=16, random_state=0),
        grid,
        scoring={"recall": get_semantic_scorer("graph_recall"), "recall_at_2": get_semantic_scorer(
            "graph_recall_at_2"
        )},
        refit="recall",
        cv=3,
        n_jobs=2,
    )
    search.fit(X)
    res = search.cv_results_
    recall = dict(zip([str(p) for p in res["params"]], res["mean_test_recall"], strict=True))
    assert recall["{'algorithm': 'brute'}"] == 1.0
    ivf = [recall[f"{{'algorithm': 'ivf', 'n_probe': {p}}}"] for p in (1, 4, 16)]
    assert ivf[0] < ivf[1] <= ivf[2]
    assert ivf[0] < 0.95
    assert ivf[2] == 1.0  # every list probed: exact
    assert search.best_score_ == 1.0


def test_graph_scorer_held_out_and_pipeline():
    X, _ = blobs(300, 6, 8, noise=1.0, center_scale=6.0, seed=2)
    est = SemanticGraphTransformer(
        n_neighbors=4, algorithm="ivf", n_lists=10, n_probe=1, random_state=0
    ).fit(X[:200])
    score = make_graph_scorer()(est, X[200:])
    # Reference: the held-out rows' stored neighbours against exact search on X[:200].
    G = est.transform(X[200:])
    Xs = X[:200].astype(np.float32)
    Q = X[200:].astype(np.float32)
    Xn = Xs / np.linalg.norm(Xs, axis=1, keepdims=True)
    Qn = Q / np.linalg.norm(Q, axis=1, keepdims=True)
    exact = np.argsort(-(Qn @ Xn.T), axis=1)[:, :4]
    found = [G.indices[G.indptr[i] : G.indptr[i] + 4] for i in range(100)]
    ref = np.mean([len(set(f) & set(e)) / 4 for f, e in zip(found, exact, strict=True)])
    assert score == pytest.approx(ref)
    # Inside a pipeline, recall is measured where the transformer indexes.
    pipe = make_pipeline(StandardScaler(), clone(est)).fit(X[:200])
    assert 0 < make_graph_scorer(k=2)(pipe, X[200:]) <= 1
    # Similarity mode keeps rows nearest first: same recall as distance mode.
    sim = clone(est).set_params(mode="similarity").fit(X[:200])
    assert make_graph_scorer()(sim, X[200:]) == score


class _OneLevel(KMeans):
    """A tiny duck-typed encoder: one level of k-means labels."""

    def transform(self, X):
        return self.predict(X)[:, None]

    def inverse_transform(self, codes):
        return self.cluster_centers_[np.asarray(codes)[:, 0]]


def test_duck_typed_encoder_and_report(X):
    enc = _OneLevel(n_clusters=6, n_init=1, random_state=0).fit(X[:160])
    report = encoder_report(enc, X[160:], k=5, as_frame=True)
    codes = enc.transform(X[160:])
    assert report["n_unique_codes"] == len(np.unique(codes))
    assert report["collision_rate"] == collision_rate(codes)
    assert report["recall_at_5"] == get_semantic_scorer("recall_at_5")(enc, X[160:])
    assert report["ndcg_at_5"] == get_semantic_scorer("ndcg_at_5")(enc, X[160:])
    assert report["quantization_mse"] == -get_semantic_scorer("neg_quantization_mse")(enc, X[160:])
    assert list(report["per_level"].index) == [1]
    rq = _pipe(n_clusters=8).fit(X)
    rep = encoder_report(rq, X, k=5)
    np.testing.assert_array_equal(rep["per_level"]["n_clusters"], [8, 8])
    assert set(rep) >= {
        "recall_at_5", "ndcg_at_5", "reconstruction_recall_at_5", "distance_correlation",
        "quantization_mse", "reconstruction_cosine", "largest_code_group", "per_level",
    }
    # Without inverse_transform the reconstruction entries are left out, not faked.
    rep = encoder_report(make_pipeline(Normalizer(), clone(rq[-1])).fit(X), X, k=5)
    assert "quantization_mse" not in rep and "recall_at_5" in rep


def test_scorer_errors(X):
    no_inverse = make_pipeline(Normalizer(), RQKMeansEncoder(
        n_levels=2, n_clusters=4, random_state=0
    )).fit(X)
    with pytest.raises(TypeError, match=r"Pipeline step 'normalizer' \(Normalizer\) has no "
                       "inverse_transform.*space='encoder'"):
        get_semantic_scorer("neg_quantization_mse")(no_inverse, X)
    # In the encoder's own space its inverse_transform suffices.
    assert get_semantic_scorer("neg_collision_rate")(no_inverse, X) <= 0
    assert make_encoder_scorer("quantization_mse", space="encoder")(no_inverse, X) < 0
    with pytest.raises(TypeError, match="expects integer codes from transform"):
        get_semantic_scorer("recall_at_5")(StandardScaler().fit(X), X)
    with pytest.raises(TypeError, match="has no inverse_transform"):
        get_semantic_scorer("neg_quantization_mse")(_NoInverse(n_clusters=3, n_init=1).fit(X), X)
    with pytest.raises(ValueError, match="k=50, but the scored X .* has 20 rows"):
        get_semantic_scorer("recall_at_50")(_pipe().fit(X), X[:20])
    with pytest.raises(TypeError, match="need a fitted SemanticGraphTransformer"):
        make_graph_scorer()(_pipe().fit(X), X)
    with pytest.raises(ValueError, match="not a valid scoring value"):
        get_semantic_scorer("recall_at_ten")
    with pytest.raises(ValueError, match="Unknown encoder metric"):
        make_encoder_scorer("ndcg")
    with pytest.raises(TypeError, match="takes no argument"):
        make_encoder_scorer("collision_rate", k=3)
    with pytest.raises(ValueError, match="rank_by must be one of"):
        make_encoder_scorer("recall_at_k", rank_by="hamming")
    with pytest.raises(ValueError, match="space must be one of"):
        make_encoder_scorer("recall_at_k", space="raw")


class _NoInverse(KMeans):
    def transform(self, X):
        return self.predict(X)[:, None]


def test_get_semantic_scorer_names_and_pickling(X):
    names = get_semantic_scorer_names()
    assert {"neg_collision_rate", "recall_at_10", "graph_recall"} <= set(names)
    for name in names:
        assert callable(get_semantic_scorer(name))
    # sklearn's names still work, and callables pass through.
    assert get_semantic_scorer("explained_variance") is not None
    f = get_semantic_scorer("recall_at_3")
    assert get_semantic_scorer(f) is f
    est = _pipe().fit(X)
    for name in ("recall_at_3", "neg_collision_rate", "graph_recall_at_7"):
        scorer = get_semantic_scorer(name)
        again = pickle.loads(pickle.dumps(scorer))
        assert repr(again) == repr(scorer)
        if not name.startswith("graph"):
            assert again(est, X) == scorer(est, X)


def test_get_scorer_is_a_deprecated_alias():
    # Our names do not shadow scikit-learn's; the old ones still work, with a warning.
    from sklearn import metrics as sk_metrics

    from sksemantic import metrics

    assert metrics.get_semantic_scorer is not sk_metrics.get_scorer
    with pytest.warns(FutureWarning, match="get_scorer is deprecated.*get_semantic_scorer"):
        scorer = metrics.get_scorer("recall_at_5")
    assert repr(scorer) == repr(get_semantic_scorer("recall_at_5"))
    with pytest.warns(FutureWarning, match="use get_semantic_scorer_names"):
        assert metrics.get_scorer_names() == get_semantic_scorer_names()


def test_report_without_pandas(X, monkeypatch):
    # A user without pandas gets the dict form, and a clear error for as_frame=True.
    import importlib

    real_import = importlib.import_module

    def no_pandas(name, *args):
        if name.split(".")[0] == "pandas":
            raise ImportError("No module named 'pandas'")
        return real_import(name, *args)

    monkeypatch.setattr(importlib, "import_module", no_pandas)
    rq = _pipe(n_clusters=8).fit(X)
    rep = encoder_report(rq, X, k=5)
    assert isinstance(rep["per_level"], dict)
    np.testing.assert_array_equal(rep["per_level"]["n_clusters"], [8, 8])
    with pytest.raises(ImportError, match="pandas"):
        encoder_report(rq, X, k=5, as_frame=True)
