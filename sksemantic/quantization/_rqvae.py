"""RQVAEEncoder: neural residual quantisation (RQ-VAE) trained with torch and skorch.

Importing this module needs the ``torch`` extra; ``sksemantic.quantization`` loads it
lazily, so that ``import sksemantic`` works without torch.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import _fit_context, clone
from sklearn.exceptions import NotFittedError
from sklearn.utils import check_array, check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from ..utils import (
    check_n_clusters_per_level,
    import_optional,
    resolve_device,
)
from ..utils._torch import torch_threads
from ..utils._validation import check_value_range
from ._base import BaseResidualEncoder
from ._kernels import decode_numpy
from ._rqkmeans import RQKMeansEncoder

torch = import_optional("torch", purpose="RQVAEEncoder")
skorch = import_optional("skorch", purpose="RQVAEEncoder")

from skorch.callbacks import EarlyStopping, PassthroughScoring  # noqa: E402

from ._torch_modules import (  # noqa: E402
    BestCollisions,
    CodebookInit,
    CodebookUsage,
    LRFactor,
    LRSchedule,
    RQVAEModule,
    RQVAENet,
    silent_sink,
    stderr_sink,
)

__all__ = ["RQVAEEncoder"]

_INFER_BATCH = 8192
_MONITOR_SIZE = 10_000


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
      batch, or as given codebooks (``codebook_init``);
    - codewords unused for a window of ``10 * n_clusters`` samples are re-seeded from
      the residuals of the current batch (``reset_dead_codes``);
    - the gradient through the code choice is the straight-through estimator or the
      rotation trick (``gradient``);
    - codebooks follow a moving average of their residuals (``ema_decay``), or are
      learned by gradient (``ema_decay=None``);
    - the loss is ``reconstruction + quantization_weight * (codebook + beta *
      commitment)``, each a mean error per coordinate (squared, or absolute for
      ``reconstruction_loss="l1"``; over the input features for the reconstruction,
      over the latent dimensions for the quantisation terms, which are also averaged
      over the levels; no codebook term with ``ema_decay``), as in TIGER and
      semantic-id: the balance between the two does not depend on
      ``n_features / latent_dim``.

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
        codewords. Half of TIGER's 1.0, a compromise between real embeddings (where
        larger weights collide a little less) and unstructured data (where they
        collide more); ``latent_dim / n_features`` suits the latter. Measurements in
        ``benchmarks/results_rqvae.md``.
    reconstruction_loss : {"mse", "l1"}, default="mse"
        Reconstruction error per coordinate: squared (``"mse"``) or absolute
        (``"l1"``, less swayed by a few badly reconstructed coordinates), as
        semantic-id's ``loss_type``.
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
    codebook_init : {"kmeans", "uniform"}, RQKMeansEncoder or list of ndarray, \
            default="kmeans"
        Where the codebooks start:

        - ``"kmeans"``: each level's codebook is the k-means of the residuals of a
          first batch of ``init_size`` rows, through the untrained encoder;
        - ``"uniform"``: uniform in ``[-1/k, 1/k]``, as the original RQ-VAE (often
          collapses);
        - an :class:`RQKMeansEncoder`, or ``n_levels`` arrays of shape
          ``(n_clusters[l], latent_dim)``: these codebooks, on the input space,
          with an encoder that starts as the identity (``x + MLP(x)``, the MLP's last
          layer zero), so that training starts from the residual k-means codes
          (semantic-id's RQ-KMeans+ start). Needs ``latent_dim == n_features``. An
          unfitted RQKMeansEncoder (as :func:`~sklearn.base.clone` leaves one) is
          cloned and fitted on ``X`` first; balance offsets are not used.
    init_size : int, default=None
        Rows of the first batch of ``codebook_init="kmeans"``;
        ``min(n_samples, max(10_000, 40 * max(n_clusters)))`` when None.
    reset_dead_codes : bool, default=True
        Re-seed unused codewords during training.
    learning_rate : float, default=1e-3
        Peak learning rate of AdamW.
    weight_decay : float, default=0.0
        AdamW's decoupled weight decay, on every weight learned by gradient.
    lr_schedule : {"cosine", "step", "constant"}, default="cosine"
        Learning rate after the warm-up, set at every epoch: ``"cosine"`` anneals
        from ``learning_rate`` towards 1% of it over the remaining epochs; ``"step"``
        multiplies it by ``lr_gamma`` every ``lr_step_size`` epochs; ``"constant"``
        keeps it.
    warmup_epochs : int, default=0
        Epochs over which the learning rate rises linearly, batch by batch, from
        ``learning_rate / warmup_batches`` to ``learning_rate`` before the schedule
        starts. Must be smaller than ``max_epochs``.
    lr_step_size : int, default=10
        Epochs between two drops of ``lr_schedule="step"``.
    lr_gamma : float, default=0.5
        Factor of each drop of ``lr_schedule="step"``.
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
        (``torch.get_num_threads()``, one thread per core unless changed) as it is,
        unless an active ``joblib.parallel_config`` sets ``n_jobs`` or this runs in
        a dask worker (its share of the worker's threads then).
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
        (codewords re-seeded), ``dur``, and ``event_lr`` (the learning rate of the
        epoch's last batch, also recorded for each batch) unless the learning rate
        is constant.
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
    every residual encoder (whatever ``reconstruction_loss``). Needs the ``torch``
    extra (``pip install 'sksemantic[torch]'``). Training on the CPU is deterministic
    for a given ``random_state`` (with the same number of torch threads); on a GPU it
    is not, and the estimator's tags say so. A model trained on a GPU loads and
    encodes on a CPU-only machine (skorch maps the tensors to the CPU and ``device_``
    becomes ``"cpu"``).

    Speed: on the CPU, training is dominated by the MLPs' matrix products (about
    ``6 * n_params`` flops per row per epoch). torch runs each operation on all its
    threads, which wait for each other at its end; when other processes keep the
    cores busy those waits can make training several times slower than on one
    thread, so ``n_jobs=1`` is the right setting on a shared machine.

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
        "reconstruction_loss": [StrOptions({"mse", "l1"})],
        "gradient": [StrOptions({"rotation", "ste"})],
        "ema_decay": [Interval(Real, 0, 1, closed="neither"), None],
        "codebook_init": [StrOptions({"kmeans", "uniform"}), RQKMeansEncoder, "array-like"],
        "init_size": [Interval(Integral, 1, None, closed="left"), None],
        "reset_dead_codes": ["boolean"],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "lr_schedule": [StrOptions({"cosine", "step", "constant"})],
        "warmup_epochs": [Interval(Integral, 0, None, closed="left")],
        "lr_step_size": [Interval(Integral, 1, None, closed="left")],
        "lr_gamma": [Interval(Real, 0, 1, closed="right")],
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
        reconstruction_loss="mse",
        gradient="rotation",
        ema_decay=0.99,
        codebook_init="kmeans",
        init_size=None,
        reset_dead_codes=True,
        learning_rate=1e-3,
        weight_decay=0.0,
        lr_schedule="cosine",
        warmup_epochs=0,
        lr_step_size=10,
        lr_gamma=0.5,
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
        self.reconstruction_loss = reconstruction_loss
        self.gradient = gradient
        self.ema_decay = ema_decay
        self.codebook_init = codebook_init
        self.init_size = init_size
        self.reset_dead_codes = reset_dead_codes
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.lr_schedule = lr_schedule
        self.warmup_epochs = warmup_epochs
        self.lr_step_size = lr_step_size
        self.lr_gamma = lr_gamma
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
        check_value_range(X, dtype=np.float32, norm=2, purpose="training in float32")
        n, d = X.shape
        n_clusters = check_n_clusters_per_level(self.n_clusters, self.n_levels, n_samples=n)
        hidden = self._check_hidden_dims()
        if self.warmup_epochs >= self.max_epochs:
            raise ValueError(
                f"warmup_epochs={self.warmup_epochs} must be smaller than max_epochs="
                f"{self.max_epochs}: the schedule needs at least one epoch after it."
            )
        device = resolve_device(self.device)
        init_codebooks = self._check_codebook_init(X, n_clusters)
        kmeans_init = init_codebooks is None and self.codebook_init == "kmeans"
        rng = check_random_state(self.random_state)
        module_seed, net_seed, init_seed, monitor_seed = (
            int(s) for s in rng.randint(2**31 - 1, size=4)
        )
        X32 = np.require(X, dtype=np.float32, requirements=["C", "W"])
        callbacks = [
            ("recon_loss", PassthroughScoring(name="recon_loss", on_train=True)),
            ("quant_loss", PassthroughScoring(name="quant_loss", on_train=True)),
            ("codebook_usage", CodebookUsage()),
        ]
        if kmeans_init:
            init_size = self.init_size or min(n, max(10_000, 40 * max(n_clusters)))
            if init_size < max(n_clusters):
                raise ValueError(
                    f"init_size={init_size} is smaller than n_clusters={max(n_clusters)}: "
                    "k-means cannot seed that many codewords."
                )
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
        if self.lr_schedule != "constant" or self.warmup_epochs:
            factor = LRFactor(
                self.lr_schedule,
                steps_per_epoch=-(-n // self.batch_size),
                max_epochs=self.max_epochs,
                warmup_epochs=self.warmup_epochs,
                step_size=self.lr_step_size,
                gamma=self.lr_gamma,
            )
            callbacks.append(
                (
                    "lr_schedule",
                    LRSchedule(
                        policy=torch.optim.lr_scheduler.LambdaLR,
                        step_every="batch",
                        lr_lambda=factor,
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
            module__n_clusters=tuple(n_clusters),
            module__beta=self.beta,
            module__gradient=self.gradient,
            module__seed=module_seed,
            module__kmeans_init=kmeans_init,
            module__ema_decay=self.ema_decay,
            module__codebooks=init_codebooks,
            optimizer=torch.optim.AdamW,
            optimizer__weight_decay=self.weight_decay,
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
            reconstruction_loss=self.reconstruction_loss,
            reset_dead_codes=self.reset_dead_codes,
            reset_window=10 * max(n_clusters),
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
        self.n_clusters_ = list(n_clusters)
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

    def _check_codebook_init(self, X, n_clusters):
        """The given initial codebooks as float32 arrays, checked; None for a named start."""
        init = self.codebook_init
        if isinstance(init, str):
            return None
        n_features = X.shape[1]
        if isinstance(init, RQKMeansEncoder):
            try:
                check_is_fitted(init, "codebooks_")
            except NotFittedError:
                init = clone(init)
                init._validate_params()  # fit's own check is skipped inside this fit
                init.fit(X)
            if init.n_features_in_ != n_features:
                raise ValueError(
                    f"codebook_init is an RQKMeansEncoder fitted on {init.n_features_in_} "
                    f"features, but X has {n_features}."
                )
            codebooks, what = init.codebooks_, "the RQKMeansEncoder in codebook_init"
        else:
            if isinstance(init, np.ndarray) and init.ndim != 3:
                raise ValueError(
                    "codebook_init must be 'kmeans', 'uniform', an RQKMeansEncoder or "
                    f"n_levels={self.n_levels} arrays of shape (n_clusters, latent_dim); got "
                    f"an array of shape {init.shape}."
                )
            codebooks = [
                check_array(cb, dtype=[np.float64, np.float32], input_name=f"codebook_init[{i}]")
                for i, cb in enumerate(init)
            ]
            what = "codebook_init"
        if len(codebooks) != self.n_levels:
            raise ValueError(
                f"{what} has {len(codebooks)} codebooks but n_levels={self.n_levels}."
            )
        if self.latent_dim != n_features:
            raise ValueError(
                f"codebook_init gives codebooks on the input space, so latent_dim must equal "
                f"n_features={n_features} (the encoder starts as the identity); got "
                f"latent_dim={self.latent_dim}."
            )
        for level, (cb, k) in enumerate(zip(codebooks, n_clusters, strict=True)):
            if cb.shape != (k, self.latent_dim):
                raise ValueError(
                    f"{what}: codebook {level} has shape {cb.shape}, but n_clusters and "
                    f"latent_dim need ({k}, {self.latent_dim}) at that level."
                )
        return [np.asarray(cb, dtype=np.float32) for cb in codebooks]

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
    # BaseResidualEncoder provides transform, inverse_transform, score, feature names,
    # the semantic-ID helpers and last_level_costs; the hooks below put the MLPs around
    # its codebooks.
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
