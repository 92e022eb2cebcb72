"""torch modules and the skorch net behind :class:`RQVAEEncoder`.

This module imports torch and skorch at the top: it is only ever imported through
``sksemantic.quantization._rqvae``, which is itself loaded lazily, so that
``import sksemantic`` works without the ``torch`` extra.

The recipe is the one of the published RQ-VAE code (TIGER, Rajput et al. 2023, and
semantic-id's port of it), with the pieces that keep codebooks alive:

- an MLP encoder to a small latent space, ``n_levels`` residual codebooks and an MLP
  decoder;
- every codebook initialised by k-means on the residuals of a large first batch
  (:class:`CodebookInit`, using the shared k-means kernel), or from given codebooks in
  the input space with an encoder that starts as the identity (:class:`ResidualMLP`,
  semantic-id's RQ-KMeans+ start);
- codes unused over a window of samples re-seeded from the current batch's residuals
  (dead-code reset, in :meth:`RQVAENet.train_step`);
- straight-through or rotation-trick gradients through the quantiser;
- codebooks updated by moving averages of their residuals, or by gradient;
- loss = reconstruction + ``quantization_weight`` * (codebook + ``beta`` * commitment),
  each a per-coordinate mean squared error (or mean absolute error for the
  reconstruction);
- the learning rate set batch by batch by :class:`LRFactor` (warm-up, then cosine,
  step or constant);
- optionally, the model of the epoch whose codes collide least on a monitor sample
  kept (:class:`BestCollisions`).
"""

import math
import sys

import numpy as np
import torch
import torch.nn.functional as F
from skorch import NeuralNet
from skorch.callbacks import Callback, LRScheduler
from torch import nn

from ..cluster import kmeans

__all__ = [
    "MLP",
    "LRFactor",
    "LRSchedule",
    "ResidualMLP",
    "ResidualQuantizer",
    "RQVAEModule",
    "RQVAENet",
    "BestCollisions",
    "CodebookInit",
    "CodebookUsage",
    "rotation_trick",
    "straight_through",
]

_EPS = 1e-12


def _generator(seed, device="cpu"):
    return torch.Generator(device=device).manual_seed(int(seed))


class MLP(nn.Sequential):
    """Linear layers with ReLU between them (none after the last), seeded init.

    Parameters
    ----------
    dims : sequence of int
        Layer widths, input first and output last.
    generator : torch.Generator
        Source of the initial weights (Xavier-uniform; zero biases), so that the
        initial module depends on the seed only and never on torch's global RNG.
    """

    def __init__(self, dims, generator):
        layers = []
        for i, (d_in, d_out) in enumerate(zip(dims[:-1], dims[1:], strict=True)):
            linear = nn.Linear(d_in, d_out)
            with torch.no_grad():
                nn.init.xavier_uniform_(linear.weight, generator=generator)
                linear.bias.zero_()
            layers.append(linear)
            if i < len(dims) - 2:
                layers.append(nn.ReLU())
        super().__init__(*layers)


class ResidualMLP(nn.Module):
    """``x + MLP(x)``, with the MLP's last layer zero at the start: the identity at first.

    The encoder of semantic-id's RQ-KMeans+ start: with codebooks fitted on the input
    space (by residual k-means), the untrained encoder leaves the data where those
    codebooks quantise it, and training departs from there.

    Parameters
    ----------
    dims : sequence of int
        Layer widths of the MLP, input first and output last (equal).
    generator : torch.Generator
        Source of the initial weights of the other layers.
    """

    def __init__(self, dims, generator):
        super().__init__()
        if dims[0] != dims[-1]:
            raise ValueError(f"a residual MLP maps a space to itself, got widths {dims}.")
        self.mlp = MLP(dims, generator)
        with torch.no_grad():
            self.mlp[-1].weight.zero_()

    def forward(self, x):
        return x + self.mlp(x)


def straight_through(z, q):
    """Value ``q``, gradient of the identity with respect to ``z`` (van den Oord 2017)."""
    return z + (q - z).detach()


def rotation_trick(z, q):
    """Value ``q``, gradient through the rotation and rescaling that maps ``z`` onto ``q``.

    The rotation trick (Fifty et al. 2024, "Restructuring vector quantization with the
    rotation trick", section 4.2): ``q = s R z`` with ``R`` the rotation taking the
    direction of ``z`` to that of ``q`` and ``s = |q| / |z|``, both treated as
    constants, so the gradient that reaches ``z`` keeps the angle between the gradient
    and the codeword instead of being copied unchanged. Rows where ``z`` is (nearly)
    zero fall back to the straight-through estimator.
    """
    z_norm = z.norm(dim=1, keepdim=True)
    q_norm = q.norm(dim=1, keepdim=True)
    u = (z / z_norm.clamp_min(_EPS)).detach()
    q_hat = (q / q_norm.clamp_min(_EPS)).detach()
    w = F.normalize(u + q_hat, dim=1, eps=_EPS).detach()
    rotated = z - 2 * (z * w).sum(1, keepdim=True) * w + 2 * (z * u).sum(1, keepdim=True) * q_hat
    rotated = rotated * (q_norm / z_norm.clamp_min(_EPS)).detach()
    small = z_norm <= 1e-8
    if bool(small.any()):
        rotated = torch.where(small, straight_through(z, q), rotated)
    return rotated


_GRADIENTS = {"ste": straight_through, "rotation": rotation_trick}


def nearest_code(x, codebook):
    """Index of the nearest codeword (squared Euclidean) for every row of ``x``."""
    c_sq = (codebook * codebook).sum(1)
    # argmin |x|^2 - 2 x.c + |c|^2; |x|^2 does not change the argmin.
    return torch.addmm(c_sq, x, codebook.t(), beta=1.0, alpha=-2.0).argmin(1)


class ResidualQuantizer(nn.Module):
    """``len(n_clusters)`` codebooks, each quantising the residual left by the previous.

    Parameters
    ----------
    n_clusters : sequence of int
        Codewords per level.
    dim : int
        Latent dimension.
    beta : float
        Commitment weight.
    gradient : {"ste", "rotation"}
        How gradients pass the non-differentiable code choice.
    ema_decay : float or None
        Update the codebooks by exponential moving averages of their residuals
        (not by gradient) when set.
    """

    def __init__(self, n_clusters, dim, *, beta=0.25, gradient="rotation", ema_decay=None):
        super().__init__()
        self.n_clusters = tuple(int(k) for k in n_clusters)
        self.dim = int(dim)
        self.beta = float(beta)
        self.gradient = gradient
        self.ema_decay = None if ema_decay is None else float(ema_decay)
        learned = self.ema_decay is None
        self.codebooks = nn.ParameterList(
            [nn.Parameter(torch.zeros(k, self.dim), requires_grad=learned) for k in self.n_clusters]
        )
        self.register_buffer("initialized", torch.zeros((), dtype=torch.bool))
        for level, k in enumerate(self.n_clusters):
            # Training statistics, not learned state: kept out of the state dict.
            self.register_buffer(f"window_counts_{level}", torch.zeros(k), persistent=False)
            self.register_buffer(f"epoch_counts_{level}", torch.zeros(k), persistent=False)
            if not learned:
                self.register_buffer(f"ema_size_{level}", torch.ones(k), persistent=False)
                self.register_buffer(f"ema_sum_{level}", torch.zeros(k, self.dim), persistent=False)
        self.batch_inputs = None

    @torch.no_grad()
    def sync_ema(self):
        """Restart the moving averages from the current codebooks (after an init)."""
        if self.ema_decay is None:
            return
        for level, codebook in enumerate(self.codebooks):
            getattr(self, f"ema_size_{level}").fill_(1.0)
            getattr(self, f"ema_sum_{level}").copy_(codebook.data)

    def _counts(self, level, idx, onehot=True):
        k = self.n_clusters[level]
        counts = torch.bincount(idx, minlength=k).to(torch.float32)
        if not onehot:
            return counts, None
        return counts, F.one_hot(idx, k).to(torch.float32)

    @torch.no_grad()
    def _ema_update(self, level, idx, residual):
        """Exponential moving average k-means step (van den Oord et al. 2017, app. A.1)."""
        decay = self.ema_decay
        size = getattr(self, f"ema_size_{level}")
        total = getattr(self, f"ema_sum_{level}")
        counts, onehot = self._counts(level, idx)
        sums = onehot.t() @ residual  # one GEMM; index_add_ is serial on the CPU
        size.mul_(decay).add_(counts, alpha=1 - decay)
        total.mul_(decay).add_(sums, alpha=1 - decay)
        n = size.sum()
        eps = 1e-5
        smoothed = (size + eps) / (n + size.numel() * eps) * n  # Laplace smoothing
        self.codebooks[level].data.copy_(total / smoothed[:, None])

    @property
    def n_levels(self):
        return len(self.n_clusters)

    def counts(self, kind):
        return [getattr(self, f"{kind}_counts_{level}") for level in range(self.n_levels)]

    def encode(self, z):
        """Codes (n, n_levels) and the residual entering each level (list of arrays)."""
        residual = z
        codes, inputs = [], []
        for codebook in self.codebooks:
            idx = nearest_code(residual, codebook)
            inputs.append(residual)
            residual = residual - codebook[idx]
            codes.append(idx)
        return torch.stack(codes, 1), inputs

    def decode(self, codes):
        """Sum of the chosen codewords, shape (n, dim)."""
        out = self.codebooks[0][codes[:, 0]]
        for level in range(1, self.n_levels):
            out = out + self.codebooks[level][codes[:, level]]
        return out

    def forward(self, z):
        """Quantise ``z``: returns ``(z_q, codes, quantization_loss)``.

        The loss is TIGER's: for each level, ``|sg(r) - e|^2 + beta |r - sg(e)|^2`` with
        ``r`` the residual entering the level (squared error averaged over the rows and
        the latent coordinates), averaged over the levels.
        """
        residual = z
        q_sum = torch.zeros_like(z)
        codebook_loss = z.new_zeros(())
        commitment = z.new_zeros(())
        codes, inputs = [], []
        for level, codebook in enumerate(self.codebooks):
            with torch.no_grad():
                idx = nearest_code(residual.detach(), codebook)
            q = codebook[idx]
            if self.ema_decay is None:
                codebook_loss = codebook_loss + (q - residual.detach()).pow(2).mean()
            commitment = commitment + (residual - q.detach()).pow(2).mean()
            if self.training:
                counts, _ = self._counts(level, idx, onehot=False)
                getattr(self, f"window_counts_{level}").add_(counts)
                getattr(self, f"epoch_counts_{level}").add_(counts)
                if self.ema_decay is not None:
                    self._ema_update(level, idx, residual.detach())
                inputs.append(residual.detach())
            residual = residual - q
            q_sum = q_sum + q
            codes.append(idx)
        if self.training:
            self.batch_inputs = inputs
        loss = (codebook_loss + self.beta * commitment) / self.n_levels
        z_q = _GRADIENTS[self.gradient](z, q_sum.detach()) if self.training else q_sum
        return z_q, torch.stack(codes, 1), loss

    @torch.no_grad()
    def reset_dead_codes(self, generator):
        """Re-seed codewords unused since the last reset from the last batch's residuals.

        Returns the number of codewords reset per level.
        """
        n_reset = []
        inputs = self.batch_inputs
        for level, codebook in enumerate(self.codebooks):
            counts = getattr(self, f"window_counts_{level}")
            dead = torch.nonzero(counts == 0).flatten()
            n_reset.append(int(dead.numel()))
            if dead.numel() and inputs is not None:
                source = inputs[level]
                rows = torch.randint(source.shape[0], (dead.numel(),), generator=generator)
                codebook.data[dead] = source[rows.to(source.device)]
                if self.ema_decay is not None:
                    getattr(self, f"ema_size_{level}")[dead] = 1.0
                    getattr(self, f"ema_sum_{level}")[dead] = codebook.data[dead]
            counts.zero_()
        return n_reset


class RQVAEModule(nn.Module):
    """MLP encoder, residual quantiser and MLP decoder.

    Parameters
    ----------
    n_features : int
        Input (and output) dimension.
    hidden_dims : sequence of int
        Encoder hidden widths; the decoder mirrors them.
    latent_dim : int
        Dimension of the quantised latent space.
    n_clusters : sequence of int
        Codewords per level.
    beta : float
        Commitment weight.
    gradient : {"ste", "rotation"}
        Gradient estimator through the quantiser.
    seed : int
        Seed of the initial weights.
    kmeans_init : bool, default=True
        Leave the codebooks to :class:`CodebookInit` (k-means on the first batch);
        when False they start uniform in ``[-1/k, 1/k]`` as in the original RQ-VAE.
        Ignored when ``codebooks`` is given.
    ema_decay : float or None, default=None
        See :class:`ResidualQuantizer`.
    codebooks : sequence of ndarray of shape (n_clusters[l], latent_dim), default=None
        Initial codebooks, in the input space (``latent_dim == n_features``); the
        encoder is then a :class:`ResidualMLP`, the identity at the start.
    """

    def __init__(
        self, n_features, hidden_dims, latent_dim, n_clusters, beta, gradient, seed,
        kmeans_init=True,
        ema_decay=None,
        codebooks=None,
    ):
        super().__init__()
        gen = _generator(seed)
        dims = [int(n_features), *[int(h) for h in hidden_dims], int(latent_dim)]
        self.encoder = MLP(dims, gen) if codebooks is None else ResidualMLP(dims, gen)
        self.quantizer = ResidualQuantizer(
            n_clusters, latent_dim, beta=beta, gradient=gradient, ema_decay=ema_decay
        )
        self.decoder = MLP(dims[::-1], gen)
        if codebooks is not None:
            with torch.no_grad():
                for codebook, given in zip(self.quantizer.codebooks, codebooks, strict=True):
                    codebook.copy_(torch.as_tensor(np.asarray(given, dtype=np.float32)))
            self.quantizer.initialized.fill_(True)
            self.quantizer.sync_ema()
        elif not kmeans_init:
            with torch.no_grad():
                for codebook in self.quantizer.codebooks:
                    bound = 1.0 / codebook.shape[0]
                    codebook.uniform_(-bound, bound, generator=gen)
            self.quantizer.initialized.fill_(True)
            self.quantizer.sync_ema()

    def forward(self, x):
        z = self.encoder(x)
        z_q, codes, quant_loss = self.quantizer(z)
        return self.decoder(z_q), codes, quant_loss


class _Batches:
    """Mini-batches of a float32 tensor by slicing (no per-sample Python indexing).

    The training order is a permutation drawn from ``generator`` each epoch.
    """

    def __init__(self, X, batch_size, generator=None):
        self.X = X
        self.batch_size = int(batch_size)
        self.generator = generator

    def __len__(self):
        return -(-self.X.shape[0] // self.batch_size)

    def __iter__(self):
        n = self.X.shape[0]
        if self.generator is None:
            for start in range(0, n, self.batch_size):
                yield self.X[start : start + self.batch_size], None
        else:
            order = torch.randperm(n, generator=self.generator)
            for start in range(0, n, self.batch_size):
                yield self.X[order[start : start + self.batch_size]], None


class RQVAENet(NeuralNet):
    """skorch net for :class:`RQVAEModule`: its loss, batching and dead-code reset.

    Built by :class:`RQVAEEncoder` inside ``fit``. The target is the input itself, so
    ``fit(X)`` takes no ``y``.

    Parameters
    ----------
    module : type
        :class:`RQVAEModule` (its arguments as ``module__*`` keywords).
    criterion : type, default=torch.nn.MSELoss
        Unused by :meth:`get_loss` (which computes the loss itself); kept for skorch.
    quantization_weight : float
        Weight of the quantisation loss against the reconstruction loss.
    reconstruction_loss : {"mse", "l1"}
        Mean squared or mean absolute error per coordinate.
    reset_dead_codes : bool
        Whether unused codewords are re-seeded during training.
    reset_window : int
        Samples seen between two dead-code checks.
    seed : int
        Seed of the shuffling and dead-code reset generator.
    **kwargs
        Passed to :class:`skorch.NeuralNet`.
    """

    def __init__(
        self,
        module,
        criterion=nn.MSELoss,
        *,
        quantization_weight=1.0,
        reconstruction_loss="mse",
        reset_dead_codes=True,
        reset_window=2560,
        seed=0,
        **kwargs,
    ):
        super().__init__(module, criterion, **kwargs)
        self.quantization_weight = quantization_weight
        self.reconstruction_loss = reconstruction_loss
        self.reset_dead_codes = reset_dead_codes
        self.reset_window = reset_window
        self.seed = seed

    def initialize(self):
        super().initialize()
        self.generator_ = _generator(self.seed)
        self.samples_since_reset_ = 0
        return self

    def get_dataset(self, X, y=None):
        if isinstance(X, torch.Tensor):
            return X
        return torch.from_numpy(np.require(X, dtype=np.float32, requirements=["C", "W"]))

    def get_iterator(self, dataset, training=False):
        return _Batches(dataset, self.batch_size, self.generator_ if training else None)

    def get_loss(self, y_pred, y_true, X=None, training=False):
        x_hat, _, quant_loss = y_pred
        X = X.to(x_hat.device)
        # Both terms are means per coordinate (as in TIGER and semantic-id), so their
        # balance does not depend on the input and latent dimensions.
        diff = x_hat - X
        recon = diff.abs().mean() if self.reconstruction_loss == "l1" else diff.pow(2).mean()
        if training:
            self.history.record_batch("recon_loss", recon.item())
            self.history.record_batch("quant_loss", quant_loss.item())
        return recon + self.quantization_weight * quant_loss

    def train_step(self, batch, **fit_params):
        step = super().train_step(batch, **fit_params)
        if self.reset_dead_codes:
            self.samples_since_reset_ += batch[0].shape[0]
            if self.samples_since_reset_ >= self.reset_window:
                n_reset = self.module_.quantizer.reset_dead_codes(self.generator_)
                self.history.record_batch("n_reset", n_reset)
                self.samples_since_reset_ = 0
        return step

    def on_train_end(self, net, X=None, y=None, **kwargs):
        # Drop the per-batch tensors kept for the reset and the training generator:
        # they are not model state, and only model state should travel in the
        # device-mapped part of a pickle (skorch's cuda_dependent_attributes_).
        self.module_.quantizer.batch_inputs = None
        self.generator_ = None
        # skorch's LRScheduler keeps its torch scheduler, which holds the optimizer and
        # so every parameter: pickled outside the device-mapped part, a GPU-trained
        # net would then fail to load on a CPU-only machine. It is rebuilt at the next
        # on_train_begin.
        for _, callback in self.callbacks_:
            if getattr(callback, "lr_scheduler_", None) is not None:
                callback.lr_scheduler_ = None


class LRFactor:
    """Learning-rate multiplier for training batch ``step`` (0-based), for ``LambdaLR``.

    A linear warm-up over the first ``warmup_epochs`` epochs, batch by batch, from
    ``1 / warmup_steps`` to 1; then, epoch by epoch counted from the end of the
    warm-up, ``"cosine"`` anneals from 1 towards ``floor`` over the remaining epochs,
    ``"step"`` multiplies by ``gamma`` every ``step_size`` epochs and ``"constant"``
    stays at 1. A class rather than a closure, so that the net pickles.

    Parameters
    ----------
    schedule : {"cosine", "step", "constant"}
        Schedule after the warm-up.
    steps_per_epoch : int
        Training batches per epoch.
    max_epochs : int
        Epochs of training (the cosine's span, with the warm-up).
    warmup_epochs : int, default=0
        Epochs of warm-up.
    step_size : int, default=1
        Epochs between two steps of ``"step"``.
    gamma : float, default=1.0
        Factor of each step of ``"step"``.
    floor : float, default=0.01
        Where the cosine heads (reached one epoch after the last).
    """

    def __init__(
        self, schedule, *, steps_per_epoch, max_epochs, warmup_epochs=0, step_size=1,
        gamma=1.0, floor=0.01,
    ):
        self.schedule = schedule
        self.steps_per_epoch = int(steps_per_epoch)
        self.max_epochs = int(max_epochs)
        self.warmup_epochs = int(warmup_epochs)
        self.step_size = int(step_size)
        self.gamma = float(gamma)
        self.floor = float(floor)

    def __call__(self, step):
        warmup_steps = self.warmup_epochs * self.steps_per_epoch
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        epoch = step // self.steps_per_epoch - self.warmup_epochs
        if self.schedule == "cosine":
            span = self.max_epochs - self.warmup_epochs
            return self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * epoch / span))
        if self.schedule == "step":
            return self.gamma ** (epoch // self.step_size)
        return 1.0


class LRSchedule(LRScheduler):
    """skorch's ``LRScheduler`` stepped every batch (give ``step_every="batch"``) that
    also records, per epoch, the learning rate of the epoch's last batch (``event_lr``
    in the epoch's history row, beside the per-batch records)."""

    def on_epoch_end(self, net, **kwargs):
        super().on_epoch_end(net, **kwargs)
        batches = net.history[-1, "batches"]
        if self.step_every == "batch" and batches and self.event_name in batches[-1]:
            net.history.record(self.event_name, batches[-1][self.event_name])


class CodebookInit(Callback):
    """k-means initialisation of every level's codebook on a large first batch.

    Runs once, before the first epoch of a fresh module: ``init_size`` rows are drawn
    (seeded), passed through the untrained encoder, and each level's codebook is the
    k-means of the residuals left by the levels above it (the shared kernel
    :func:`sksemantic.cluster.kmeans`).

    Parameters
    ----------
    init_size : int
        Rows of the first batch.
    max_iter : int
        Lloyd iterations per level.
    seed : int
        Seed of the row sample and the k-means seeding.
    """

    def __init__(self, init_size, max_iter=20, seed=0, verbose=0):
        self.init_size = init_size
        self.max_iter = max_iter
        self.seed = seed
        self.verbose = verbose

    @torch.no_grad()
    def on_train_begin(self, net, X=None, y=None, **kwargs):
        quantizer = net.module_.quantizer
        if bool(quantizer.initialized):
            return
        rng = np.random.RandomState(self.seed)
        X = net.get_dataset(X)
        n = X.shape[0]
        rows = np.sort(rng.choice(n, min(n, self.init_size), replace=False))
        was_training = net.module_.training
        net.module_.eval()
        device = next(net.module_.parameters()).device
        z = net.module_.encoder(X[torch.from_numpy(rows)].to(device)).cpu().numpy()
        net.module_.train(was_training)
        residual = z.astype(np.float32, copy=False)
        for level, codebook in enumerate(quantizer.codebooks):
            centers, labels, _, _ = kmeans(
                residual,
                codebook.shape[0],
                max_iter=self.max_iter,
                random_state=rng,
                verbose=self.verbose,
                label=f"RQ-VAE codebook init, level {level}",
                backend="numpy" if device.type == "cpu" else "torch",
                device=str(device),
            )
            codebook.data.copy_(torch.from_numpy(centers).to(device))
            residual = residual - centers[labels]
        quantizer.initialized.fill_(True)
        quantizer.sync_ema()


class CodebookUsage(Callback):
    """Record, per epoch, the fraction of each level's codewords used in training.

    Adds ``codebook_usage`` (a list with one fraction per level), ``min_usage`` and
    ``n_reset`` (codewords re-seeded during the epoch) to ``net.history``.
    """

    def on_epoch_begin(self, net, **kwargs):
        for counts in net.module_.quantizer.counts("epoch"):
            counts.zero_()

    def on_epoch_end(self, net, **kwargs):
        usage = [float((c > 0).float().mean()) for c in net.module_.quantizer.counts("epoch")]
        net.history.record("codebook_usage", usage)
        net.history.record("min_usage", min(usage))
        batches = net.history[-1]["batches"]
        net.history.record("n_reset", int(sum(sum(b.get("n_reset", ())) for b in batches)))


class BestCollisions(Callback):
    """Keep the model of the epoch whose codes collide least on a monitor sample.

    Before the first epoch, ``monitor_size`` training rows are drawn (seeded); after
    every epoch they are encoded and their collision rate (1 - distinct codes / rows)
    is recorded as ``monitor_collisions``. When training ends, the module's state of
    the epoch with the lowest rate (the later one on ties) is restored, and its
    number (1-based) is left in ``best_epoch_``.

    Parameters
    ----------
    monitor_size : int
        Rows of the monitor sample (every row when the data has fewer).
    seed : int
        Seed of the sample.
    """

    def __init__(self, monitor_size, seed=0):
        self.monitor_size = monitor_size
        self.seed = seed

    def initialize(self):
        self.best_epoch_ = None
        self._reset()
        return self

    def _reset(self):
        self.X_ = None
        self.best_rate_ = float("inf")
        self.best_state_ = None

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        X = net.get_dataset(X)
        n = X.shape[0]
        if self.monitor_size < n:
            rng = np.random.RandomState(self.seed)
            rows = np.sort(rng.choice(n, self.monitor_size, replace=False))
            X = X[torch.from_numpy(rows)]
        self.X_ = X
        self.best_rate_ = float("inf")
        self.best_state_ = None

    @torch.no_grad()
    def on_epoch_end(self, net, **kwargs):
        module = net.module_
        was_training = module.training
        module.eval()
        device = next(module.parameters()).device
        codes = []
        for start in range(0, self.X_.shape[0], 8192):
            z = module.encoder(self.X_[start : start + 8192].to(device))
            codes.append(module.quantizer.encode(z)[0])
        module.train(was_training)
        codes = torch.cat(codes)
        rate = 1.0 - torch.unique(codes, dim=0).shape[0] / codes.shape[0]
        net.history.record("monitor_collisions", rate)
        if rate <= self.best_rate_:
            self.best_rate_ = rate
            self.best_epoch_ = len(net.history)
            self.best_state_ = {k: v.detach().clone() for k, v in module.state_dict().items()}

    def on_train_end(self, net, **kwargs):
        if self.best_state_ is not None:
            net.module_.load_state_dict(self.best_state_)
        # The sample and the saved state are training data, not model state.
        self._reset()


def silent_sink(*args, **kwargs):
    """Print sink that prints nothing (a module-level function, so nets pickle)."""


def stderr_sink(text):
    """Print sink for skorch's PrintLog that writes to stderr, as sksemantic's progress."""
    print(text, file=sys.stderr, flush=True)
