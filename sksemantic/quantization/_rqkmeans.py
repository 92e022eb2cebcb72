"""RQKMeansEncoder: residual k-means codes (semantic IDs) as a scikit-learn transformer."""

from numbers import Integral, Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import validate_data

from ..cluster._balanced import BalanceOptions, _balanced_kmeans
from ..cluster._kmeans import SampleMoments, _kmeans, _nearest_centroid, _Run, auto_pca_components
from ..cluster._lloyd import LloydOptions
from ..utils import Progress, check_n_clusters_per_level, resolve_device
from ..utils._validation import check_value_range
from ._base import BaseResidualEncoder
from ._kernels import shift_by_codewords

__all__ = ["RQKMeansEncoder"]


class RQKMeansEncoder(BaseResidualEncoder):
    """Residual k-means: embeddings to ``n_levels`` integer codes (semantic IDs).

    ``fit(X)`` learns one codebook per level by k-means on what the previous levels
    leave unexplained (the residuals); ``transform(X)`` gives every row one code per
    level, the nearest codeword to its residual; ``inverse_transform(codes)`` sums the
    chosen codewords. Rows that share a code prefix are similar, which is what makes the
    codes useful as semantic IDs for generative retrieval (see :mod:`sksemantic.ids`).

    Parameters
    ----------
    n_levels : int, default=3
        Number of levels (codebooks), i.e. the length of a code.
    n_clusters : int or list of int, default=256
        Codewords per level: one value for every level, or one per level.
    max_iter : int, default=100
        Most Lloyd iterations per level (a cap: levels usually stop at ``tol`` well
        before it). Balanced levels run at most
        ``min(max_iter, 20)``: their inertia jitters by about half a percent as the
        Sinkhorn offsets move, so the ``tol`` test rarely ends them.
    tol : float or "auto", default="auto"
        A level stops when a Lloyd iteration lowers its inertia by less than ``tol``
        times its value and by less than ``10 * tol`` times the sum of squares the
        level explains (see :func:`sksemantic.cluster.kmeans`); the joint refinement
        stops when a round gains less than ``tol`` relative. Balanced levels stop when
        an iteration lowers the inertia by less than ``tol`` times its value (a rise,
        from their offsets moving, does not stop them). ``"auto"``: 3e-5 on plain
        levels that the joint refinement polishes afterwards (1e-5 with
        ``refine_iter=0``), 1e-4 on levels with a projected start (they converge in the
        principal directions first, so the full-width passes only polish), 1e-5 for
        balanced levels and the refinement. Lloyd's last passes lower the inertia
        slowly but for long, so a per-pass threshold must be small for a level to end
        near its converged inertia.
    init : {"k-means++", "random"}, default="k-means++"
        Seeding of each level's k-means (greedy k-means++ runs on a subsample of
        ``max(512 * n_clusters, 10_000)`` rows: at 256 codewords, every training row).
    n_init : int or "auto", default="auto"
        Seedings tried per level. Each candidate is seeded and run to convergence on
        the seeding subsample and the lowest inertia there is refined on all rows,
        so extra seedings cost a fraction of a full run (on data no larger than the
        subsample they are full runs, as scikit-learn's ``n_init``). ``"auto"`` tries
        ``min(10, max(1, 256 // n_clusters))`` per level: restarts pay off with few
        codewords, where one poor seeding leaves a whole region badly served, and
        cost little then; at 256 codewords and more one seeding is used. Levels with a
        projected start (``pca_components``) try at most 3: their candidates run to a
        tight tolerance, which leaves less for further restarts to gain.
    pca_components : int, "auto" or None, default="auto"
        Each plain level's k-means (seeding, restarts and Lloyd's iterations) first runs
        to convergence on its residuals projected onto their top ``pca_components``
        principal directions, where a pass costs a fraction of one on every feature;
        the means of the residuals by the labels found there start the iterations on
        every feature, which then only polish (see :func:`sksemantic.cluster.kmeans`).
        With few codewords on wide data a level explains little of the variance and
        Lloyd needs a hundred passes or more to converge; this gets there at the cost
        of a few. The directions come from the covariance of a 32,768-row sample of
        the training rows, updated exactly from level to level as the residuals
        change. ``"auto"`` uses ``max(4 * n_clusters, n_features // 6)`` directions
        when that is at most a third of the features, else none: at 10 codewords on
        768 features, 128 directions; at 256 codewords the fit is the plain one.
        None never projects; a value at or above ``n_features`` does not either.
        Balanced levels do not use it.
    max_samples : int, "auto" or None, default="auto"
        Rows used to learn the codebooks: a random subset of this size (every level uses
        the same subset). ``"auto"`` uses at most ``max(131_072, 512 *
        max(n_clusters))`` rows: every row up to 131,072, beyond that 512 per codeword
        (a codeword estimated from ``m`` rows adds about ``1/m`` to the relative error
        of its rows, so a few hundred per codeword are enough once the data is large;
        small codebooks still get 131,072 rows, which cost little). None uses every row.
    batch_size : int, default=None
        Rows per distance matrix product; bounds the memory of fit and transform
        (None: about 32 MiB of distances per block).
    refine_iter : int, default=3
        Rounds of joint codebook refinement after the level-by-level fit (plain fits;
        balanced fits keep their levels as fitted). Greedy residual k-means fits each
        codebook for the levels before it only; a round revisits every level with the
        others held fixed: it re-assigns the training rows to the level's codewords
        and moves each codeword to the mean of what the other levels leave of its
        rows (block coordinate descent, as in improved/enhanced residual vector
        quantization). A round is kept only if the codes ``transform`` gives lower the
        training inertia by at least ``tol`` relative; the first round that does not
        ends the refinement. Each round costs about two encodings of the training
        rows. 0 disables it.
    balanced : bool, default=False
        Make the codes of each level near-equally frequent: each level is a balanced
        k-means whose assignment is the nearest codeword after a per-codeword offset,
        the potentials of a log-domain Sinkhorn optimal transport to uniform cluster
        sizes. The offsets are kept (``balance_offsets_``) and used by ``transform``, so
        new data is encoded the same way. The price is a somewhat higher reconstruction
        error; whether whole codes collide less depends on the data (on small skewed
        blobs they need not).
    device : str, default="cpu"
        ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``: where the k-means passes and
        the encoding run; ``"auto"`` the first available of CUDA, MPS and the CPU.
        Codebooks are stored as numpy arrays, so a model fitted on a GPU loads and
        encodes on a CPU-only machine; numpy and torch give the same codes for the same
        codebooks.
    backend : {"auto", "numpy", "torch"}, default="auto"
        What computes the k-means passes and the encoding. ``"numpy"`` (BLAS on the
        host) is the fast CPU path; ``"torch"`` runs them in torch on ``device`` (torch
        is imported only then); ``"auto"`` is numpy on the CPU and torch elsewhere.
        ``backend="torch", device="cpu"`` gives, for the same data (float32) and seed,
        the same codebooks and codes as numpy: the backends share the seeding and the
        order of operations, and assignments whose two best codewords are within float
        rounding of each other are re-decided exactly in float64. It checks on a CPU
        what a GPU fit will do, and can be faster where torch's BLAS is.
    n_jobs : int, default=None
        Threads for the numpy passes, restarts, refinement and encoding: ``-1`` every
        core, ``-2`` all but one, and so on; None every core unless an active
        ``joblib.parallel_config`` sets ``n_jobs`` (or this runs in a dask worker: its
        share of the worker's threads). Set 1 when fitting several encoders at once in
        parallel processes. The codes do not depend on it.
    random_state : int, RandomState instance or None, default=None
        Seeds the training subsample and each level's seeding. Equal seeds give equal
        codebooks on the CPU.
    verbose : int, default=0
        Print progress (per level and per Lloyd iteration) to stderr.

    Attributes
    ----------
    codebooks_ : list of ndarray of shape (n_clusters_[l], n_features_in_)
        Codewords of each level, in the dtype of the training data.
    n_clusters_ : list of int
        Codewords per level.
    balance_offsets_ : list of ndarray or None
        Per-codeword offsets of balanced fits (subtracted from the squared distances);
        None when ``balanced=False``.
    n_iter_ : int
        Most Lloyd iterations run by any level.
    n_iter_per_level_ : list of int
        Lloyd iterations run per level.
    inertia_ : float
        Sum of squared residuals of the training rows after the last level (with
        the codes ``transform`` gives them, after refinement).
    n_refine_iter_ : int
        Refinement rounds kept (see ``refine_iter``).
    device_ : str
        The device the model was fitted on.
    n_features_in_ : int
        Number of features seen during fit.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during fit, when X has string column names.

    See Also
    --------
    sklearn.cluster.KMeans : One level of the same k-means.
    sksemantic.ids.SemanticIdAssigner : Unique, stable IDs from the codes.
    sksemantic.cluster.balanced_kmeans : The balanced k-means of ``balanced=True``.

    Notes
    -----
    The codes are always the greedy residual codes (each level the nearest codeword to
    what the levels before leave), so a code prefix means the same after refinement.

    Each Lloyd iteration is one matrix product of the training rows with the codebook,
    so a fit costs about ``n_levels * max_iter * 2 * n_rows * n_clusters * n_features``
    flops. ``transform`` works block by block of rows. Rows whose two nearest codewords
    are closer than float rounding can tell apart are re-decided in float64, so the
    codes do not depend on the backend or the number of threads.

    Examples
    --------
    >>> import numpy as np
    >>> from sksemantic.quantization import RQKMeansEncoder
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 8)).astype(np.float32)
    >>> enc = RQKMeansEncoder(n_levels=3, n_clusters=8, random_state=0).fit(X)
    >>> codes = enc.transform(X)
    >>> codes.shape, codes.dtype.name, int(codes.max()) < 8
    ((200, 3), 'int64', True)
    >>> X_hat = enc.inverse_transform(codes)
    >>> bool(np.mean((X - X_hat) ** 2) < np.mean(X ** 2))
    True
    >>> enc.to_ids(X[:2]).tolist() == ["-".join(map(str, c)) for c in codes[:2]]
    True
    >>> enc.get_feature_names_out().tolist()
    ['rqkmeansencoder_level0', 'rqkmeansencoder_level1', 'rqkmeansencoder_level2']
    """

    _parameter_constraints: dict = {
        "n_levels": [Interval(Integral, 1, None, closed="left")],
        "n_clusters": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "init": [StrOptions({"k-means++", "random"})],
        "n_init": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "pca_components": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"}), None],
        "refine_iter": [Interval(Integral, 0, None, closed="left")],
        "max_samples": [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"}), None],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "balanced": ["boolean"],
        "device": [str],
        "backend": [StrOptions({"auto", "numpy", "torch"})],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        *,
        n_levels=3,
        n_clusters=256,
        max_iter=100,
        tol="auto",
        init="k-means++",
        n_init="auto",
        pca_components="auto",
        refine_iter=3,
        max_samples="auto",
        batch_size=None,
        balanced=False,
        device="cpu",
        backend="auto",
        n_jobs=None,
        random_state=None,
        verbose=0,
    ):
        self.n_levels = n_levels
        self.n_clusters = n_clusters
        self.max_iter = max_iter
        self.tol = tol
        self.init = init
        self.n_init = n_init
        self.pca_components = pca_components
        self.refine_iter = refine_iter
        self.max_samples = max_samples
        self.batch_size = batch_size
        self.balanced = balanced
        self.device = device
        self.backend = backend
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the codebooks, level by level, by k-means on the residuals.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Embeddings: dense, finite; at least ``max(n_clusters)`` rows.
        y : None
            Ignored.

        Returns
        -------
        self : RQKMeansEncoder
            The fitted encoder.
        """
        X = validate_data(self, X, dtype=[np.float64, np.float32], ensure_min_samples=2)
        check_value_range(X, dtype=X.dtype, norm=2, purpose="k-means")
        n = X.shape[0]
        n_clusters = check_n_clusters_per_level(self.n_clusters, self.n_levels, n_samples=n)
        device = resolve_device(self.device)
        backend = _resolve_backend(self.backend, device)
        rng = check_random_state(self.random_state)
        size = self._train_size(n, n_clusters)
        if size < n:
            train = X[np.sort(rng.choice(n, size, replace=False))]
        else:
            train = X
        train = np.ascontiguousarray(train)
        residual = np.array(train, copy=True)
        progress = Progress(self.n_levels, "RQKMeansEncoder levels", self.verbose)
        codebooks, offsets, n_iters, level_labels = [], [], [], []
        moments = None  # of the residuals, for the levels' projected starts
        for level, k in enumerate(n_clusters):
            seed = int(rng.randint(np.iinfo(np.int32).max))
            label = f"RQKMeansEncoder level {level}"
            basis = self._pca_components(k, X.shape[1])
            if basis is not None:
                if moments is None:
                    moments = SampleMoments(residual, random_state=seed)
                basis = moments.directions(basis, residual.dtype)
            run = _Run(backend, device, self.batch_size, self.n_jobs,
                       max(int(self.verbose) - 1, 0), label)
            centers, labels, offset, n_iter = self._fit_level(residual, k, seed, run, basis)
            if moments is not None and level + 1 < len(n_clusters):
                moments.subtract(residual, centers, labels, self.n_jobs)
            shift_by_codewords(residual, centers, labels, n_jobs=self.n_jobs)
            codebooks.append(centers)
            level_labels.append(labels)
            offsets.append(offset)
            n_iters.append(n_iter)
            progress.update()
        self.balance_offsets_ = offsets if self.balanced else None
        n_refined = 0
        if self.balanced or self.refine_iter == 0:
            inertia = _sum_squares(residual)
        else:
            # The levels' own final assignments are the greedy codes of their codebooks
            # (nearest codeword of the residual), so refinement starts from them.
            codebooks, inertia, n_refined = refine_codebooks(
                train, codebooks, n_rounds=self.refine_iter, tol=self._tol("refine"),
                encode=self._encode_with, verbose=self.verbose,
                start=(np.stack(level_labels, axis=1), residual), n_jobs=self.n_jobs,
            )
            del residual
        self.codebooks_ = codebooks
        self.n_clusters_ = n_clusters
        self.n_iter_per_level_ = n_iters
        self.n_iter_ = int(max(n_iters))
        self.n_refine_iter_ = n_refined
        self.inertia_ = inertia
        self.device_ = device
        self._n_features_out = self.n_levels
        return self

    def _squared_errors(self, X):
        # Encoding leaves the residual behind: one pass, no reconstruction to build.
        err = np.empty_like(X)
        self._encode_with(X, self.codebooks_, self.balance_offsets_, residual_out=err)
        return np.einsum("ij,ij->i", err, err)

    def _train_size(self, n, n_clusters):
        if self.max_samples is None:
            return n
        if self.max_samples == "auto":
            return min(n, max(2**17, 512 * max(n_clusters)))
        return max(min(n, int(self.max_samples)), max(n_clusters))

    def _n_init(self, k, projected):
        if self.n_init == "auto":
            return min(3 if projected else 10, max(1, 256 // k))
        return int(self.n_init)

    def _tol(self, stage):
        """The tolerance of a ``stage``: "level" (a plain level's Lloyd iterations),
        "projected" (a level with a projected start), "balanced" or "refine"."""
        if self.tol != "auto":
            return float(self.tol)
        if stage == "level":
            # The joint refinement polishes the levels further.
            return 3e-5 if self.refine_iter > 0 else 1e-5
        return 1e-4 if stage == "projected" else 1e-5

    def _pca_components(self, k, n_features):
        """Principal directions for a plain level's projected start, or None."""
        if self.balanced or self.pca_components is None:
            return None
        if self.pca_components == "auto":
            return auto_pca_components(k, n_features)
        return int(self.pca_components) if self.pca_components < n_features else None

    def _fit_level(self, residual, k, seed, run, basis):
        """One level's (balanced) k-means: centres, labels, offsets (or None), n_iter."""
        rng = check_random_state(seed)
        n_init = self._n_init(k, basis is not None)
        if self.balanced:
            options = LloydOptions(max_iter=_balanced_max_iter(self.max_iter),
                                   tol=self._tol("balanced"))
            centers, labels, _, n_iter, offsets = _balanced_kmeans(
                residual, k, options, BalanceOptions(), rng=rng, n_init=n_init,
                init=self.init, run=run,
            )
            return centers, labels, offsets, n_iter
        stage = "level" if basis is None else "projected"
        options = LloydOptions(max_iter=self.max_iter, tol=self._tol(stage),
                               split_small=0.05)
        centers, labels, _, n_iter = _kmeans(
            residual, k, options, rng=rng, n_init=n_init, init=self.init,
            pca_components=basis, run=run,
        )
        return centers, labels, None, n_iter


def _resolve_backend(backend, device):
    """``"numpy"`` or ``"torch"`` for the ``backend`` parameter on ``device``."""
    if backend == "auto":
        return "numpy" if device == "cpu" else "torch"
    if backend == "numpy" and device != "cpu":
        raise ValueError(
            f"backend='numpy' runs on the CPU only, got device={device!r}; use "
            "backend='torch' or 'auto'."
        )
    return backend


def _sum_squares(a):
    """Sum of squares of a float32/64 matrix, accumulated in float64 per row."""
    return float(np.einsum("ij,ij->i", a, a).sum(dtype=np.float64))


def refine_codebooks(X, codebooks, *, n_rounds, tol, encode, verbose=0, start=None,
                     n_jobs=None):
    """Joint refinement of residual codebooks by block coordinate descent.

    Each round visits the levels in order; with the other levels' codes fixed, the
    level's target is what they leave of each row, its rows are re-assigned to the
    nearest codeword of that target and each codeword moves to the mean target of its
    rows (empty codewords stay). Every step lowers the joint error of the round's
    codes; the round is kept if the greedy codes of ``encode`` (what ``transform``
    returns) lower the inertia by at least ``tol`` relative, else refinement stops.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Training rows, in the codebooks' dtype.
    codebooks : list of ndarray
        Codebooks of the greedy fit (not modified).
    n_rounds : int
        Most rounds; 0 only computes the inertia.
    tol : float
        Least relative decrease of the inertia for a round to be kept.
    encode : callable
        ``encode(X, codebooks, residual_out=None)`` -> int64 codes of shape
        (n_samples, n_levels); fills ``residual_out`` with ``X`` minus the
        reconstruction when given.
    verbose : int, default=0
        Print progress.
    start : tuple of (ndarray, ndarray), default=None
        The greedy codes of ``X`` for ``codebooks`` and what they leave of ``X`` (the
        residual, used and overwritten), when the caller has them; computed otherwise.
    n_jobs : int, default=None
        Threads for the assignments and shifts (None: every core), through joblib.

    Returns
    -------
    codebooks : list of ndarray
        The refined codebooks (new arrays; the input when no round was kept).
    inertia : float
        Sum of squared errors of ``X`` under the greedy codes of the returned codebooks.
    n_kept : int
        Rounds kept.
    """
    spare = []  # a residual buffer to reuse: fresh pages of X's size cost a page fault each

    def errors(codebooks):
        err = spare.pop() if spare else np.empty_like(X)
        codes = encode(X, codebooks, residual_out=err)
        return codes, err, _sum_squares(err)

    if start is None:
        codes, err, inertia = errors(codebooks)
    else:
        codes, err = start
        inertia = _sum_squares(err)
    progress = Progress(n_rounds, "RQKMeansEncoder refinement", verbose)
    n_kept = 0
    for _ in range(n_rounds):
        new = [cb.copy() for cb in codebooks]
        target = err  # becomes, level by level, X minus the other levels
        for level, cb in enumerate(new):
            shift_by_codewords(target, cb, codes[:, level], sign=1, n_jobs=n_jobs)
            labels, _, sums, counts = _nearest_centroid(target, cb, with_sums=True,
                                                        n_jobs=n_jobs)
            filled = counts > 0
            cb[filled] = (sums[filled] / counts[filled, None]).astype(cb.dtype)
            codes[:, level] = labels
            shift_by_codewords(target, cb, labels, n_jobs=n_jobs)
        spare.append(err)  # the round's target: its content is no longer needed
        new_codes, new_err, new_inertia = errors(new)
        progress.update()
        if not new_inertia < inertia * (1.0 - tol):  # also ends at zero error
            break
        codebooks, codes, err, inertia = new, new_codes, new_err, new_inertia
        n_kept += 1
    return codebooks, inertia, n_kept


def _balanced_max_iter(max_iter):
    """Balanced levels' iteration cap (see ``max_iter``)."""
    return min(int(max_iter), 20)
