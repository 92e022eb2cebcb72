"""RQVAEEncoder: neural residual quantisation (RQ-VAE) trained with torch and skorch.

Importing this module needs the ``torch`` extra; ``sksemantic.quantization`` loads it
lazily, so that ``import sksemantic`` works without torch.
"""

from contextlib import contextmanager
from numbers import Integral, Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import validate_data

from ..utils import effective_n_jobs, import_optional
from ._base import BaseResidualEncoder
from ._base import resolve_device as _check_device
from ._kernels import decode_numpy, encode_numpy

torch = import_optional("torch", purpose="RQVAEEncoder")
skorch = import_optional("skorch", purpose="RQVAEEncoder")

from skorch.callbacks import (  # noqa: E402
    EarlyStopping,
    LRScheduler,
    PassthroughScoring,
)

from ._torch_modules import (  # noqa: E402
    BestCollisions,
    CodebookInit,
    CodebookUsage,
    RQVAEModule,
    RQVAENet,
    silent_sink,
    stderr_sink,
)

__all__ = ["RQVAEEncoder"]

_INFER_BATCH = 8192
_MONITOR_SIZE = 10_000


def resolve_device(device):
    """The torch device to use for ``device``, checked to be available.

    ``"auto"`` picks CUDA when available, else Apple's MPS, else the CPU; anything else
    goes through the residual encoders' shared check.
    """
    if device == "auto":
        if torch.cuda.is_available():
            return "cuda"
        mps = getattr(torch.backends, "mps", None)
        if mps is not None and mps.is_available():
            return "mps"
        return "cpu"
    return _check_device(device)


@contextmanager
def torch_threads(n_jobs):
    """Run the body with ``effective_n_jobs(n_jobs)`` torch threads, then restore.

    ``None`` leaves torch's own setting (by default one thread per core) untouched.
    """
    if n_jobs is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(effective_n_jobs(n_jobs))
    try:
        yield
    finally:
        torch.set_num_threads(before)


class RQVAEEncoder(BaseResidualEncoder):
    """Residual-quantisation VAE: embeddings to ``n_levels`` integer codes, learned.

    An MLP encoder maps each embedding to a small latent vector, ``n_levels``
    codebooks quantise it residually (each level encodes what the levels above left),
    and an MLP decoder maps the sum of the chosen codewords back to the embedding
    space. This is the RQ-VAE of TIGER (Rajput et al. 2023) and of semantic-id, for
    data on which residual k-means on the raw embeddings (RQKMeansEncoder) is not
    enough. Training runs through a skorch net, built inside ``fit``.

    What keeps the codebooks alive (codebook collapse is the usual failure):

    - each level's codebook starts as the k-means of the residuals of a large first
      batch (``kmeans_init``);
    - codewords unused for a window of ``10 * n_clusters`` samples are re-seeded from
      the residuals of the current batch (``reset_dead_codes``);
    - the gradient through the code choice is the straight-through estimator or the
      rotation trick (``gradient``);
    - codebooks follow a moving average of their residuals (``ema_decay``), or are
      learned by gradient (``ema_decay=None``);
    - the loss is ``reconstruction + quantization_weight * (codebook + beta *
      commitment)``, each a mean squared error per coordinate (over the input
      features for the reconstruction, over the latent dimensions for the
      quantisation terms, which are also averaged over the levels; no codebook term
      with ``ema_decay``), as in TIGER and semantic-id: the balance between the two
      does not depend on ``n_features / latent_dim``.

    Parameters
    ----------
    n_levels : int, default=3
        Number of codebooks (levels of the code).
    n_clusters : int or sequence of int, default=256
        Codewords per level: one value for every level, or one per level.
    hidden_dims : sequence of int, default=(512, 256, 128)
        Hidden widths of the encoder MLP; the decoder mirrors them. Empty for linear
        maps.
    latent_dim : int, default=32
        Dimension of the quantised latent space.
    beta : float, default=0.25
        Commitment weight: how strongly the encoder output is pulled to its codeword.
    quantization_weight : float, default=0.5
        Weight of the quantisation loss against the reconstruction loss (both per
        coordinate). Larger values tie the encoder's outputs more tightly to the
        codewords. Half of TIGER's 1.0: on data with little structure for the
        decoder to learn (Gaussian noise, 20,000 x 768, 15 epochs), codes collide 5
        times as often with 1.0 as with 0.5 (1.0% of rows against 0.2%), while on
        real sentence embeddings (Debian descriptions, 25,000 x 384, 20 epochs) the
        two differ little (8.8% against 9.0%) and both collide less than with the
        sum-over-coordinates loss used before (about 9.7%, a weight 12 times smaller
        there). On unstructured data the summed loss did better: on 100,000 x 768
        Gaussian noise, 2.4% of rows collide after 6 epochs against 0.44% after 5
        epochs with it; a weight of ``latent_dim / n_features`` (about 0.04 there)
        restores that balance.
    gradient : {"rotation", "ste"}, default="rotation"
        ``"ste"``: straight-through (gradient copied from the quantised vector to the
        encoder output). ``"rotation"``: the rotation trick (Fifty et al. 2024),
        which passes the gradient through the rotation taking the encoder output to
        its codeword.
    ema_decay : float or None, default=0.99
        Codebooks follow an exponential moving average of the residuals assigned to
        them (the k-means step of VQ-VAE's appendix, with Laplace smoothing), which
        tracks the encoder as it moves; None learns them by gradient on the codebook
        loss ``|sg(r) - e|^2`` as in TIGER.
    kmeans_init : bool, default=True
        Initialise each codebook by k-means on the first batch's residuals (otherwise
        uniform in ``[-1/k, 1/k]``, which often collapses).
    init_size : int, default=None
        Rows of that first batch; ``min(n_samples, max(10_000, 40 * max(n_clusters)))``
        when None.
    reset_dead_codes : bool, default=True
        Re-seed unused codewords during training.
    learning_rate : float, default=1e-3
        Adam learning rate.
    lr_schedule : {"cosine", "constant"}, default="cosine"
        ``"cosine"``: cosine annealing over ``max_epochs`` down to 1% of
        ``learning_rate`` (skorch's ``LRScheduler``).
    max_epochs : int, default=20
        Passes over the data.
    batch_size : int, default=1024
        Rows per gradient step.
    keep_best : bool, default=True
        After every epoch, encode a seeded sample of ``min(n_samples, 10_000)``
        training rows and record the rate at which their codes collide
        (``monitor_collisions`` in ``history_``); at the end, restore the model of the
        epoch with the lowest rate (``best_epoch_``), as semantic-id does. Collisions
        can creep up again late in training while the reconstruction still
        improves; False keeps the last epoch's model.
    early_stopping : int, default=None
        Stop when the training loss has not improved by a relative ``tol`` for this
        many epochs (skorch's ``EarlyStopping``); None trains ``max_epochs`` epochs.
    tol : float, default=1e-4
        Relative improvement that counts for ``early_stopping``.
    device : str, default="cpu"
        torch device for training and encoding: ``"cpu"``, ``"cuda"``, ``"cuda:1"``,
        ``"mps"`` or ``"auto"`` (the first available of CUDA, MPS, CPU).
    n_jobs : int, default=None
        torch threads for training and encoding on the CPU, set for the duration of
        ``fit``, ``transform``, ``inverse_transform`` and ``score`` and restored after:
        ``-1`` every core, ``-2`` all but one, and so on. None leaves torch's setting
        (``torch.get_num_threads()``, one thread per core unless changed) as it is.
        See the Notes on busy machines.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the k-means initialisation, the batch order and the
        dead-code reset. torch's global random state is left untouched. On the CPU,
        equal seeds and data give equal models.
    verbose : int, default=0
        When > 0, print skorch's per-epoch table (losses, smallest codebook usage,
        codewords reset, learning rate) to stderr; when > 1, also the progress of the
        k-means initialisation.

    Attributes
    ----------
    net_ : skorch.NeuralNet
        The trained net; ``net_.module_`` is the torch module.
    history_ : skorch.History
        Per-epoch records: ``train_loss``, ``recon_loss``, ``quant_loss``,
        ``monitor_collisions`` (with ``keep_best``), ``codebook_usage`` (fraction of
        each level's codewords used in the epoch), ``min_usage``, ``n_reset``
        (codewords re-seeded), ``dur``.
    device_ : str
        Device the model lives on (``"cpu"`` after loading a GPU-trained model on a
        machine without a GPU).
    codebooks_ : list of ndarray of shape (n_clusters_[l], latent_dim)
        The learned codebooks, in the latent space (numpy copies of the module's).
    n_clusters_ : list of int
        Codewords per level.
    codebook_usage_ : ndarray of shape (n_levels,)
        Fraction of each level's codewords used by the training data, final model.
    n_epochs_ : int
        Epochs trained (fewer than ``max_epochs`` after early stopping).
    best_epoch_ : int
        The epoch (1-based) whose model was kept: the one with the fewest monitor
        collisions with ``keep_best``, else the last.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    RQKMeansEncoder : Residual k-means on the raw embeddings; no training loop.
    sksemantic.ids.SemanticIdAssigner : Unique, stable IDs from a fitted encoder (collision
        counter, or re-encoding of the last level to the nearest free code, greedy or by
        Sinkhorn, on this encoder's latent distances).

    Notes
    -----
    ``score`` is the negative mean squared reconstruction error per feature, as for
    every residual encoder. Needs the ``torch`` extra (``pip install 'sksemantic[torch]'``). Training on the
    CPU is deterministic for a given ``random_state`` (with the same number of torch
    threads); on a GPU it is not, and the estimator's tags say so. A model trained on
    a GPU loads and encodes on a CPU-only machine (skorch maps the tensors to the CPU
    and ``device_`` becomes ``"cpu"``).

    Speed: on the CPU, training is dominated by the MLPs' matrix products (about
    ``6 * n_params`` flops per row per epoch, 6.7 Mflop for 768-dimensional inputs
    with the default architecture). torch runs each operation on all its threads,
    which wait for each other at its end: when other processes keep the cores busy,
    those waits can make training several times slower than on one thread (on two
    cores shared with two other busy processes, an epoch of the bare MLPs took 5 to 6
    times longer on two threads than on one), so ``n_jobs=1`` is the right setting
    on a shared machine.

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.quantization import RQVAEEncoder
    >>> X = np.random.default_rng(0).normal(size=(200, 16)).astype(np.float32)
    >>> enc = RQVAEEncoder(n_levels=2, n_clusters=8, hidden_dims=(32,), latent_dim=8,
    ...                    max_epochs=5, batch_size=64, random_state=0).fit(X)
    >>> codes = enc.transform(X)
    >>> codes.shape, codes.dtype.name, int(codes.max()) < 8
    ((200, 2), 'int64', True)
    >>> enc.inverse_transform(codes).shape
    (200, 16)
    >>> len(enc.history_), len(enc.history_[-1, "codebook_usage"])
    (5, 2)
    >>> enc.to_ids(X[:2]).tolist()  # doctest: +SKIP
    ['3-5', '0-7']

    Unique IDs through the shared policies: here a collision counter as a third level
    (``uniqueness="sinkhorn"`` or ``"nearest_free"`` instead move colliding items to
    free last-level codes, by this encoder's latent distances).

    >>> from sksemantic.ids import SemanticIdAssigner
    >>> ids = SemanticIdAssigner(enc, uniqueness="counter").assign(X, keys=range(200))
    >>> ids.shape, len(np.unique(ids, axis=0))
    ((200, 3), 200)
    """

    _parameter_constraints: dict = {
        "n_levels": [Interval(Integral, 1, None, closed="left")],
        "n_clusters": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "hidden_dims": ["array-like"],
        "latent_dim": [Interval(Integral, 1, None, closed="left")],
        "beta": [Interval(Real, 0, None, closed="left")],
        "quantization_weight": [Interval(Real, 0, None, closed="left")],
        "gradient": [StrOptions({"rotation", "ste"})],
        "ema_decay": [Interval(Real, 0, 1, closed="neither"), None],
        "kmeans_init": ["boolean"],
        "init_size": [Interval(Integral, 1, None, closed="left"), None],
        "reset_dead_codes": ["boolean"],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "lr_schedule": [StrOptions({"cosine", "constant"})],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "keep_best": ["boolean"],
        "early_stopping": [Interval(Integral, 1, None, closed="left"), None],
        "tol": [Interval(Real, 0, None, closed="left")],
        "device": [str],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        n_levels=3,
        n_clusters=256,
        hidden_dims=(512, 256, 128),
        latent_dim=32,
        beta=0.25,
        quantization_weight=0.5,
        gradient="rotation",
        ema_decay=0.99,
        kmeans_init=True,
        init_size=None,
        reset_dead_codes=True,
        learning_rate=1e-3,
        lr_schedule="cosine",
        max_epochs=20,
        batch_size=1024,
        keep_best=True,
        early_stopping=None,
        tol=1e-4,
        device="cpu",
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.n_levels = n_levels
        self.n_clusters = n_clusters
        self.hidden_dims = hidden_dims
        self.latent_dim = latent_dim
        self.beta = beta
        self.quantization_weight = quantization_weight
        self.gradient = gradient
        self.ema_decay = ema_decay
        self.kmeans_init = kmeans_init
        self.init_size = init_size
        self.reset_dead_codes = reset_dead_codes
        self.learning_rate = learning_rate
        self.lr_schedule = lr_schedule
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.keep_best = keep_best
        self.early_stopping = early_stopping
        self.tol = tol
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Train the encoder, codebooks and decoder on the embeddings ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings; dense, finite, at least ``max(n_clusters)`` rows. Cast to
            float32.
        y : None
            Ignored.

        Returns
        -------
        self : RQVAEEncoder
            The fitted encoder.
        """
        X = validate_data(self, X, dtype=[np.float32, np.float64], ensure_min_samples=2)
        n, d = X.shape
        n_clusters = self._check_n_clusters(n)
        hidden = self._check_hidden_dims()
        device = resolve_device(self.device)
        rng = check_random_state(self.random_state)
        module_seed, net_seed, init_seed, monitor_seed = (
            int(s) for s in rng.randint(2**31 - 1, size=4)
        )
        X32 = np.require(X, dtype=np.float32, requirements=["C", "W"])
        init_size = self.init_size or min(n, max(10_000, 40 * int(n_clusters.max())))
        if init_size < n_clusters.max():
            raise ValueError(
                f"init_size={init_size} is smaller than n_clusters={int(n_clusters.max())}: "
                "k-means cannot seed that many codewords."
            )
        callbacks = [
            ("recon_loss", PassthroughScoring(name="recon_loss", on_train=True)),
            ("quant_loss", PassthroughScoring(name="quant_loss", on_train=True)),
            ("codebook_usage", CodebookUsage()),
        ]
        if self.kmeans_init:
            callbacks.insert(
                0,
                (
                    "codebook_init",
                    CodebookInit(
                        min(init_size, n), seed=init_seed, verbose=max(self.verbose - 1, 0)
                    ),
                ),
            )
        if self.keep_best:
            callbacks.append(
                ("best_collisions", BestCollisions(_MONITOR_SIZE, seed=monitor_seed))
            )
        if self.lr_schedule == "cosine":
            callbacks.append(
                (
                    "lr_schedule",
                    LRScheduler(
                        policy="CosineAnnealingLR",
                        T_max=self.max_epochs,
                        eta_min=0.01 * self.learning_rate,
                    ),
                )
            )
        if self.early_stopping is not None:
            callbacks.append(
                (
                    "early_stopping",
                    EarlyStopping(
                        monitor="train_loss",
                        patience=self.early_stopping,
                        threshold=self.tol,
                        threshold_mode="rel",
                        sink=stderr_sink if self.verbose else silent_sink,
                    ),
                )
            )
        net = RQVAENet(
            RQVAEModule,
            module__n_features=d,
            module__hidden_dims=hidden,
            module__latent_dim=self.latent_dim,
            module__n_clusters=tuple(int(k) for k in n_clusters),
            module__beta=self.beta,
            module__gradient=self.gradient,
            module__seed=module_seed,
            module__kmeans_init=self.kmeans_init,
            module__ema_decay=self.ema_decay,
            optimizer=torch.optim.Adam,
            optimizer__foreach=True,  # one fused update per step (the default on CUDA only)
            lr=self.learning_rate,
            max_epochs=self.max_epochs,
            batch_size=self.batch_size,
            train_split=None,
            device=device,
            callbacks=callbacks,
            callbacks__print_log__sink=stderr_sink if self.verbose else silent_sink,
            callbacks__print_log__keys_ignored=["codebook_usage"],
            verbose=int(self.verbose > 0),
            quantization_weight=self.quantization_weight,
            reset_dead_codes=self.reset_dead_codes,
            reset_window=10 * int(n_clusters.max()),
            seed=net_seed,
        )
        # Layer construction draws from torch's global generator before our seeded
        # re-initialisation; fork it so the caller's global random state is unchanged.
        with torch.random.fork_rng(devices=[]), torch_threads(self.n_jobs):
            net.initialize()
            net.partial_fit(X32)
        self.net_ = net
        self.history_ = net.history
        self.device_ = device
        self.n_clusters_ = [int(k) for k in n_clusters]
        self.n_epochs_ = len(net.history)
        best = dict(net.callbacks_).get("best_collisions")
        self.best_epoch_ = best.best_epoch_ if best is not None else self.n_epochs_
        # Latent-space codebooks as numpy: the shared encode kernel picks the codes (with
        # its exact re-decision of near ties), and the uniqueness policies read them.
        self.codebooks_ = [
            cb.detach().cpu().numpy().astype(np.float32, copy=True)
            for cb in net.module_.quantizer.codebooks
        ]
        from ..metrics import codebook_usage

        usage = codebook_usage(self._encode(X32), n_clusters=self.n_clusters_)
        self.codebook_usage_ = usage["used_fraction"]
        return self

    def _check_n_clusters(self, n_samples):
        k = self.n_clusters
        if isinstance(k, Integral):
            ks = np.full(self.n_levels, int(k), dtype=np.int64)
        else:
            ks = np.asarray(k)
            if ks.ndim != 1 or ks.shape[0] != self.n_levels or ks.dtype.kind not in "iu":
                raise ValueError(
                    f"n_clusters must be an int or {self.n_levels} ints (one per level), "
                    f"got {k!r}."
                )
            ks = ks.astype(np.int64)
            if np.any(ks < 1):
                raise ValueError(f"n_clusters must be >= 1 at every level, got {k!r}.")
        if ks.max() > n_samples:
            raise ValueError(
                f"n_clusters={int(ks.max())} exceeds n_samples={n_samples}: each codeword is "
                "seeded from a distinct sample."
            )
        return ks

    def _check_hidden_dims(self):
        dims = self.hidden_dims
        try:
            dims = [int(h) for h in dims]
            ok = all(h >= 1 for h in dims) and all(
                float(h) == float(o) for h, o in zip(dims, self.hidden_dims, strict=True)
            )
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(
                f"hidden_dims must be a sequence of positive ints, got {self.hidden_dims!r}."
            )
        return tuple(dims)

    # ------------------------------------------------------------- encoding
    # BaseResidualEncoder provides transform, inverse_transform, score, feature names
    # and the semantic-ID helpers; the hooks below put the MLPs around its codebooks.
    def _module(self):
        module = self.net_.module_
        module.eval()
        return module, torch.device(self.net_.device or "cpu")

    @torch.no_grad()
    def _latent(self, X):
        """Encoder output (the space the codebooks live in) of float32 rows ``X``."""
        module, dev = self._module()
        Xt = torch.from_numpy(np.require(X, dtype=np.float32, requirements=["C", "W"]))
        out = np.empty((X.shape[0], self.latent_dim), dtype=np.float32)
        with torch_threads(self.n_jobs):
            for start in range(0, X.shape[0], _INFER_BATCH):
                z = module.encoder(Xt[start : start + _INFER_BATCH].to(dev))
                out[start : start + _INFER_BATCH] = z.cpu().numpy()
        return out

    def _encode(self, X):
        return encode_numpy(self._latent(X), self.codebooks_)

    @torch.no_grad()
    def _decode(self, codes):
        module, dev = self._module()
        zq = torch.from_numpy(decode_numpy(codes, self.codebooks_, np.float32))
        out = np.empty((codes.shape[0], self.n_features_in_), dtype=np.float32)
        with torch_threads(self.n_jobs):
            for start in range(0, codes.shape[0], _INFER_BATCH):
                out[start : start + _INFER_BATCH] = (
                    module.decoder(zq[start : start + _INFER_BATCH].to(dev)).cpu().numpy()
                )
        return out

    def _last_level_costs(self, X, codes):
        """Squared latent distance from the residual before the last level to every
        last-level codeword: what the uniqueness policies ("nearest_free", "sinkhorn")
        minimise when they move a colliding item to a free code."""
        X = self._validate_X(X)
        codes = self._check_codes(codes)
        residual = self._latent(X)
        if len(self.codebooks_) > 1:
            residual -= decode_numpy(codes[:, :-1], self.codebooks_[:-1], np.float32)
        last = self.codebooks_[-1]
        cost = residual @ last.T
        cost *= -2
        cost += np.einsum("ij,ij->i", last, last)
        cost += np.einsum("ij,ij->i", residual, residual)[:, None]
        return np.maximum(cost, 0)

    # ---------------------------------------------------------- persistence
    def __setstate__(self, state):
        super().__setstate__(state)
        net = self.__dict__.get("net_")
        if net is not None:
            # skorch falls back to the CPU (with a DeviceWarning) when the device the
            # model was trained on is missing here; follow it.
            self.device_ = str(torch.device(net.device or "cpu"))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        device = self.device if isinstance(self.device, str) else "cpu"
        tags.non_deterministic = device != "cpu"
        return tags
