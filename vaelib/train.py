"""Training: ``fit`` (a thin function over ``Trainer``). Checkpoints are in ``checkpoint``, the model cache in ``cache``.

How the trainer stays fast, on a laptop CPU as on a GPU:

* the whole dataset is validated and moved to the device once, flattened to ``(N, in_dim)``; every epoch draws one
  random permutation on the device and batches are sliced out of memory (no DataLoader, no per-sample transforms);
* a step computes batch sums only (the cross-entropy reduced in its own kernel) and backpropagates from the
  objective alone; the sums are added up on the device, and the host reads them only every ``check_every`` steps
  (to update the progress bar and to stop on a NaN/inf loss) and once at the end of the epoch;
* Adam runs its fused (or multi-tensor) kernel, gradients are reset with ``set_to_none``;
* on the CPU, denormal numbers (below 1.2e-38, into which Adam's running means of rarely used weights decay) are
  flushed to zero in every thread while ``fit`` trains: x86 CPUs compute with them up to a hundred times more slowly
  (see :func:`flush_denormals`);
* on CUDA the forward pass runs under autocast (bfloat16 where the GPU supports it natively, else float16 with
  a gradient scaler); on the CPU everything stays float32 (``amp=torch.bfloat16`` forces autocast there, which the
  tests use to run the GPU's code path on the CPU);
* data too large for the GPU's free memory stay on the host; batches are sliced there and copied over.

Every loss is per example and in nats: a VAE minimises the negative ELBO, ``-E_q[log p(x|z)] + beta * KL``, and an
Autoencoder the reconstruction loss (binary cross-entropy summed over pixels). Options change the objective that is
optimised, never what is reported as the test loss:

* ``kl_warmup``: the KL weight rises linearly from 0 to ``beta`` over that many epochs (Bowman et al., 2016;
  Sønderby et al., 2016);
* ``free_bits``: each latent dimension's batch-mean KL counts as at least that many nats (Kingma et al., 2016);
* ``corrupt``: the model sees corrupted training batches and is scored on reconstructing the clean ones (denoising).

A conditional model (``CVAE``) trains on (images, labels) pairs: each batch's labels are sliced with the same
permutation as its images and passed to the encoder and the decoder.
"""
from __future__ import annotations

import contextlib
import copy
import ctypes
import hashlib
import math
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from . import checks, losses
from .checkpoint import CheckpointError, check_destination, load_checkpoint, save_checkpoint
from .notebook import cpu_notice
from .data import BINARIZE, STATIC_THRESHOLD

_positive = checks.positive

#: The test set is binarized once with this seed under ``binarize="dynamic"`` (whatever the training seed).
TEST_BINARIZE_SEED = 0
#: Part of the model cache's key: raised whenever the same arguments come to train different weights.
#: 2: each epoch's randomness is seeded by (seed, epoch) alone (see :func:`epoch_seeds`).
TRAINER_VERSION = 2


def epoch_seeds(seed: int, epoch: int) -> tuple[int, int]:
    """The seeds of epoch ``epoch`` (0 = the first) of a run seeded with ``seed``: one for the data (batch order,
    dynamic binarization), one for the reparameterisation noise; two independent 63-bit numbers.

    They depend on ``seed`` and ``epoch`` alone, so a run resumed from a checkpoint after epoch k draws exactly what
    the same run done in one go drew.
    """
    digest = hashlib.sha256(f"vaelib epoch seeds {int(seed)} {int(epoch)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1, int.from_bytes(digest[8:16], "little") >> 1


def _set_flush_denormal(on: bool) -> None:
    """``torch.set_flush_denormal(on)`` in this thread and in every thread of torch's OpenMP pool.

    ``torch.set_flush_denormal`` sets the flags of the calling thread only, while torch's matrix products and
    element-wise kernels (fused Adam's included) also run on the pool's worker threads; so it is run once on each of
    them as well, through the OpenMP runtime's own entry point ``GOMP_parallel`` (libgomp on Linux; LLVM's libomp
    provides it too). Where there is no such runtime, only this thread is set.
    """
    torch.set_flush_denormal(on)
    if not torch.backends.openmp.is_available():
        return
    try:  # void GOMP_parallel(void (*fn)(void *), void *data, unsigned num_threads, unsigned flags)
        parallel = ctypes.CDLL(None).GOMP_parallel
    except (AttributeError, OSError):
        return
    each_thread = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda _: torch.set_flush_denormal(on))
    parallel.argtypes = [type(each_thread), ctypes.c_void_p, ctypes.c_uint, ctypes.c_uint]
    parallel.restype = None
    parallel(each_thread, None, torch.get_num_threads(), 0)


@contextlib.contextmanager
def flush_denormals(device: torch.device):
    """Inside the block, on the CPU, float32 numbers below 1.2e-38 (denormals) count as zero, in every thread.

    Why: Adam keeps a running mean of each weight's gradient, multiplied by 0.9 every step. A weight whose gradient is
    exactly 0 for hundreds of steps in a row (in the first layer, the weights of the pixels at MNIST's border, almost
    always black) sees that mean decay into the denormal range, where x86 CPUs compute up to a hundred times more
    slowly. On MNIST (784-400-20, batch 128) about 90,000 of Adam's numbers are denormal from the second epoch on,
    and its step takes 3 times as long (2.2 ms against 0.7 ms on one thread of an Intel Xeon). Flushing them
    changes only numbers below 1.2e-38 (a weight moves by less than 1e-35 for them, far below its float32
    resolution), which is why TensorFlow flushes them by default. The previous setting is restored on leaving.
    """
    if device.type != "cpu":
        yield
        return
    was_on = torch.tensor(1e-39).mul(1.0).item() == 0.0  # a denormal that does not survive: flushing is on
    _set_flush_denormal(True)
    try:
        yield
    finally:
        _set_flush_denormal(was_on)


class TrainingDiverged(FloatingPointError):
    """The training loss became NaN or infinite; the model was given back its last good weights."""


def pick_device() -> torch.device:
    """The best available device: CUDA, then Apple's MPS, then the CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass
class History:
    """Per-epoch records of a training run. Losses are per example, in nats.

    train_loss: the training objective averaged over each epoch's batches (as the weights changed).
    test_loss: ``recon + beta * KL`` per example on the test set after each epoch (empty without a test set); for an
        Autoencoder the reconstruction loss.
    epoch_seconds: wall time of each epoch's training pass (test evaluation excluded).
    train_recon, train_kl: for VAEs, the true terms -E_q[log p(x|z)] and KL(q(z|x) || p(z)) averaged over the epoch
        (train_loss = train_recon + beta * train_kl when the KL weight was beta all epoch). Empty for an Autoencoder.
    beta: for VAEs, the KL weight at the end of each epoch: ``beta``, or less during a KL warm-up. Empty for an
        Autoencoder.

    The test loss is always ``recon + beta * KL`` with the run's target ``beta`` (no warm-up), so with beta = 1 it is
    the negative ELBO, comparable across runs whatever their training options.
    """

    train_loss: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    train_recon: list[float] = field(default_factory=list)
    train_kl: list[float] = field(default_factory=list)
    beta: list[float] = field(default_factory=list)

    def to_dict(self) -> dict:
        """A plain dict of lists of floats (what checkpoints store)."""
        return {k: [float(v) for v in vals] for k, vals in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "History":
        names = {f.name for f in fields(cls)}
        if not isinstance(d, dict) or not set(d) <= names:
            extra = sorted(set(d) - names) if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"not a History: expected a dict with keys among {sorted(names)}; got {extra}")
        return cls(**{k: [float(v) for v in vals] for k, vals in d.items()})


# --------------------------------------------------------------------------------------------- the trainer


def _is_vae(model) -> bool:
    return hasattr(model, "reparameterize")


def _amp_dtype(device: torch.device, amp) -> torch.dtype | None:
    """The autocast dtype, or None for float32.

    ``amp`` None or True: on CUDA, bfloat16 where the GPU supports it natively, else float16 (with a gradient scaler);
    elsewhere float32. False: float32. ``torch.bfloat16`` or ``torch.float16``: that dtype on any device, the CPU
    included, which is how the tests run the CUDA path's code on a machine without a GPU.
    """
    if amp is False:
        return None
    if isinstance(amp, torch.dtype):
        if amp not in (torch.bfloat16, torch.float16):
            raise ValueError(f"amp must be None, True, False, torch.bfloat16 or torch.float16; got {amp}")
        return amp
    if amp not in (None, True):
        raise ValueError(f"amp must be None, True, False, torch.bfloat16 or torch.float16; got {amp!r}")
    if device.type != "cuda":
        return None
    try:
        native_bf16 = torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # older torch without the keyword
        native_bf16 = torch.cuda.is_bf16_supported()
    return torch.bfloat16 if native_bf16 else torch.float16


def data_home(device: torch.device, nbytes: int, keep_on_host: bool | None = None) -> torch.device:
    """Where ``nbytes`` of training data live during training: on ``device``, unless a GPU has less than twice that
    free (or ``keep_on_host`` is True); then on the CPU, and each batch is sliced there and copied over."""
    if keep_on_host:
        return torch.device("cpu")
    if keep_on_host is None and device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        if nbytes > free // 2:
            return torch.device("cpu")
    return device


def _adam(params, lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam with its fused kernel where this torch has one for the device, else the multi-tensor (foreach) one."""
    try:
        return torch.optim.Adam(params, lr=lr, fused=device.type in ("cpu", "cuda"))
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, foreach=True)


class Trainer:
    """Trains a VAE (on the negative ELBO, with weight ``beta`` on the KL) or an Autoencoder (on reconstruction loss).

    ``Trainer(model, ...).fit(train, epochs, test=None)`` trains in place and returns the :class:`History`;
    calling ``fit`` again continues training (the optimiser state and the history carry on).

    model: a ``vaelib`` model (VAE, CVAE, ConvVAE, Autoencoder); it is moved to ``device`` (default:
        :func:`pick_device`). A conditional model (CVAE) needs (images, labels) pairs as training and test data.
    batch_size, lr: mini-batch size and Adam's learning rate.
    beta: the weight of the KL term (a VAE's negative ELBO for 1, the beta-VAE objective otherwise).
    kl_warmup: KL warm-up (Bowman et al., 2016; Sønderby et al., 2016), in epochs (>= 0, fractions allowed): the
        KL weight of optimiser step s (s = 1 for the run's first step) is
        ``beta * min(1, s / (kl_warmup * steps_per_epoch))``, so it rises linearly from 0 and stays at ``beta`` after
        ``kl_warmup`` epochs; 0 (default): ``beta`` from the start. A resumed run continues the schedule (s follows
        from the epochs completed).
    free_bits: free bits (Kingma et al., 2016), a floor in nats per latent dimension (>= 0): each mini-batch's
        objective is ``mean_b recon_b + w * sum_j max(free_bits, KL_j)``, KL_j being dimension j's KL averaged
        over the batch and w the KL weight; a dimension below the floor gets no gradient from the KL.
        0 (default): ``mean_b (recon_b + w * KL_b)``.
    corrupt: denoising (Vincent et al., 2008): a function applied to each training batch's input, (B, in_dim) ->
        (B, in_dim), e.g. ``vaelib.data.masking_noise(0.3)``; the loss compares the reconstruction with the clean
        batch. It draws its noise from torch's global RNG, which the trainer seeds every epoch, so runs stay
        reproducible. Test losses are measured on clean inputs. None (default): no corruption.
    seed: seeds the batch order, the reparameterisation noise and dynamic binarization, epoch by epoch (each
        epoch's from the seed and the epoch's number alone, :func:`epoch_seeds`); runs on the CPU with the same
        seed are identical, however they are split into ``fit`` calls. The global RNG state is restored afterwards.
    verbose: show a tqdm progress bar with the running loss.
    checkpoint: a path; if given, a checkpoint (model, optimiser, history) is written after every epoch, and
        :meth:`resume` continues the run it holds. Before training, a folder, or a file that is not a checkpoint of
        this model's class and config, is refused (CheckpointError) unless ``overwrite=True``.
    binarize: ``None``, ``"static"`` or ``"dynamic"``; default: what ``load_dataset`` marked on ``train``.
    amp: mixed precision: None (automatic: autocast on CUDA only), False (never), or ``torch.bfloat16`` /
        ``torch.float16`` to force that autocast dtype on any device (float16 comes with a gradient scaler).
    keep_data_on_host: None (automatic: the data move to the GPU when it has room for them), True (they stay on
        the CPU and each batch is copied over from pinned memory), False (always on the device).
    check_every: how often (in steps) the host reads the running loss, to refresh the progress bar and to stop
        on a NaN/inf loss. A NaN is therefore caught at most ``check_every`` steps late, which does no harm: the
        model is then given back the weights it had at the end of the last completed epoch.
    """

    def __init__(self, model, *, batch_size: int = 128, lr: float = 1e-3, device=None, seed: int = 0,
                 beta: float = 1.0, kl_warmup: float = 0, free_bits: float = 0.0, corrupt=None,
                 verbose: bool = True, checkpoint=None, binarize: str | None = None,
                 amp: bool | torch.dtype | None = None, keep_data_on_host: bool | None = None,
                 check_every: int = 50, eval_batch_size: int = 1000, overwrite: bool = False):
        _positive("batch_size", batch_size, integer=True)
        _positive("lr", lr)
        _positive("check_every", check_every, integer=True)
        _positive("eval_batch_size", eval_batch_size, integer=True)
        checks.nonnegative("beta", beta)
        checks.nonnegative("kl_warmup", kl_warmup)
        checks.nonnegative("free_bits", free_bits)
        if binarize not in BINARIZE:
            raise ValueError(f"binarize must be one of {BINARIZE}; got {binarize!r}")
        if corrupt is not None and not callable(corrupt):
            raise TypeError(f"corrupt must be a function of a batch (B, in_dim) -> (B, in_dim), e.g. "
                            f"vaelib.data.gaussian_noise(0.3); got {type(corrupt).__name__}")
        if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
            raise ValueError(f"seed must be an integer; got {seed!r}")
        self.device = torch.device(device) if device is not None else pick_device()
        if self.device.type == "cuda" and self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        cpu_notice(self.device)  # in Colab on a CPU runtime: one line on how to get a GPU
        self.model = model.to(self.device)
        self.vae = _is_vae(model)
        self.conditional = bool(getattr(model, "conditional", False))
        for name, value in (("kl_warmup", kl_warmup), ("free_bits", free_bits)):
            if value and not self.vae:
                raise ValueError(f"{name} changes a VAE's KL term; a {type(model).__name__} has none")
        self.batch_size, self.eval_batch_size, self.check_every = int(batch_size), int(eval_batch_size), int(check_every)
        self.lr, self.seed, self.beta, self.verbose = float(lr), int(seed), float(beta), verbose
        self.kl_warmup, self.free_bits, self.corrupt = float(kl_warmup), float(free_bits), corrupt
        self.checkpoint, self.binarize, self.overwrite = checkpoint, binarize, bool(overwrite)
        self.amp_dtype = _amp_dtype(self.device, amp)
        self.keep_data_on_host = keep_data_on_host
        # float16 has too few exponent bits for small gradients: scale the loss up, and the gradients back down.
        self.scaler = torch.amp.GradScaler(self.device.type) if self.amp_dtype == torch.float16 else None
        self.optimizer = _adam(self.model.parameters(), self.lr, self.device)
        self.history = History()

    # ---- data
    def prepare(self, data, name: str = "train") -> torch.Tensor:
        """Validate images and return them as float32 (N, in_dim) on the device. Raises ValueError on bad input.

        ``data``: a tensor (N, in_dim) or (N, C, H, W), or a pair (images, labels) such as ``load_dataset`` returns.
        """
        images = data[0] if isinstance(data, (tuple, list)) else data
        if isinstance(images, np.ndarray):
            images = torch.from_numpy(images)
        if not isinstance(images, torch.Tensor):
            raise TypeError(f"{name} must be an image tensor or an (images, labels) pair; got {type(images).__name__}")
        in_dim = self.model.in_dim
        shape = tuple(images.shape)
        expected = f"(N, {in_dim}) or (N, {', '.join(map(str, self.model.image_shape))})"
        if images.dim() < 2 or images.shape[0] == 0 or images[0].numel() != in_dim:
            got = images[0].numel() if images.dim() >= 2 and images.shape[0] else "no"
            raise ValueError(f"{name}: the model expects {in_dim} features per example, images of shape {expected}; "
                             f"got shape {shape} ({got} features per example)")
        if not images.is_floating_point():
            raise ValueError(f"{name}: expected float images in [0, 1]; got dtype {images.dtype} "
                             f"(for uint8 pixels divide by 255)")
        home = data_home(self.device, images.numel() * 4, self.keep_data_on_host)
        x = images.reshape(shape[0], in_dim).to(home, torch.float32)
        checks.values(x, getattr(self.model, "likelihood", "bernoulli"), name)  # once per dataset, not per batch
        return x

    def prepare_labels(self, data, x: torch.Tensor, name: str = "train") -> torch.Tensor | None:
        """A conditional model's labels of ``data`` (an (images, labels) pair) as float32 rows (N, n_classes) where
        the prepared images ``x`` live; None for a model that takes no labels. Raises ValueError on bad labels."""
        if not self.conditional:
            return None
        if not (isinstance(data, (tuple, list)) and len(data) == 2):
            raise ValueError(f"{name}: a {type(self.model).__name__} is conditional, so {name} must be an (images, "
                             f"labels) pair, as load_dataset returns; got a {type(data).__name__}")
        # One check of every label (it reads them on the host), so none is needed per batch.
        rows = checks.labels(data[1], self.model.n_classes, x.shape[0], f"{name} labels")
        return rows.to(x.device, torch.float32)

    def _to_device(self, xb: torch.Tensor) -> torch.Tensor:
        """A batch on the training device; from the host to a GPU through pinned memory, without blocking."""
        if xb.device == self.device:
            return xb
        if xb.device.type == "cpu" and self.device.type == "cuda":
            xb = xb.pin_memory()
        return xb.to(self.device, non_blocking=True)

    def _mode(self, train) -> str | None:
        return self.binarize if self.binarize is not None else getattr(train, "binarize", None)

    # ---- the objective
    def kl_weight(self, step: int, steps_per_epoch: int) -> float:
        """The KL term's weight at optimiser step ``step`` (1 = the run's first), with ``steps_per_epoch`` batches an
        epoch: ``beta * min(1, step / (kl_warmup * steps_per_epoch))`` (Bowman et al., 2016; Sønderby et al., 2016);
        ``beta`` without warm-up.
        """
        if self.kl_warmup == 0:
            return self.beta
        return self.beta * min(1.0, step / (self.kl_warmup * steps_per_epoch))

    def _loss_terms(self, xb: torch.Tensor, kl_weight: float, free_bits: float = 0.0, target=None, labels=None):
        """The batch sums of the objective, of -log p(x|z) and of the KL (three scalars, in nats). The KL term is
        weighted by ``kl_weight``, with a floor of ``free_bits`` nats per dimension. ``target``: the clean batch that
        the reconstruction of the input ``xb`` is compared with (default ``xb``); ``labels``: a conditional model's
        labels of the batch, float rows (B, n_classes).

        Only batch sums are needed here (the history records epoch means), so -log p(x|z) is summed over the batch
        inside the cross-entropy's kernel (``batch_sum=True``) rather than per example and then summed; with the
        step's backward starting from the objective alone, an MNIST epoch (784-400-20, two threads) takes about 3 %
        less time (2.57 s against 2.64 s, median of 5 epochs each). The weights are the same bit for bit; the
        reported sums may differ in their last bits.
        """
        # The unchecked losses: prepare and prepare_labels checked the data once.
        if not self.vae:
            recon = losses._reconstruction_loss(self.model, xb, target, batch_sum=True)
            return recon, recon, torch.zeros_like(recon)
        log_px_z, kl_dims = losses._elbo_terms(self.model, xb, per_dim=True, target=target, y=labels, batch_sum=True)
        recon, kl = -log_px_z, kl_dims.sum()
        if free_bits:
            # Free bits act on the batch mean of each dimension's KL, not per example: times B, it is a batch sum.
            return recon + kl_weight * xb.shape[0] * losses.free_bits_kl(kl_dims, free_bits), recon, kl
        return recon + kl_weight * kl, recon, kl

    # ---- one step, one epoch
    def _step(self, xb: torch.Tensor, kl_weight: float | None = None, target: torch.Tensor | None = None,
              labels: torch.Tensor | None = None) -> torch.Tensor:
        """One optimiser step on a batch, with the KL term weighted by ``kl_weight`` (default ``beta``), the
        reconstruction compared with ``target`` (default ``xb``), and a conditional model's ``labels``; returns the
        detached sums over the batch of (objective, recon, kl), shape (3,)."""
        kl_weight = self.beta if kl_weight is None else kl_weight
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
            objective, recon, kl = self._loss_terms(xb, kl_weight, self.free_bits, target, labels)
        self.optimizer.zero_grad(set_to_none=True)
        # backward starts from the objective alone: the recon and KL sums are reported, not differentiated.
        mean = objective.float() / xb.shape[0]
        if self.scaler is not None:
            self.scaler.scale(mean).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            mean.backward()
            self.optimizer.step()
        return torch.stack([objective.detach(), recon.detach(), kl.detach()]).float()

    def _train_epoch(self, x: torch.Tensor, gen: torch.Generator, bar, first_step: int = 1,
                     y: torch.Tensor | None = None) -> list[float]:
        """One pass over x (N, in_dim) (and a conditional model's labels y, (N, n_classes)) in a random order,
        ``first_step`` being the run's number of its first optimiser step (for the KL warm-up); returns the
        per-example means of (objective, recon, kl)."""
        n, bs = x.shape[0], self.batch_size
        perm = torch.randperm(n, device=gen.device, generator=gen).to(x.device)
        total = torch.zeros(3, device=self.device)
        steps = math.ceil(n / bs)
        for i in range(steps):
            rows = perm[i * bs:(i + 1) * bs]
            xb = self._to_device(x.index_select(0, rows))
            yb = self._to_device(y.index_select(0, rows)) if y is not None else None  # the same examples' labels
            weight = self.kl_weight(first_step + i, steps)
            if self.corrupt is None:
                total += self._step(xb, weight, labels=yb)
            else:  # denoising: the model sees the corrupted batch and reconstructs the clean one
                total += self._step(self._corrupted(xb), weight, target=xb, labels=yb)
            bar.update(1)
            if (i + 1) % self.check_every == 0 or i + 1 == steps:
                running = total[0].item() / min(n, (i + 1) * bs)  # the only host sync: every check_every steps
                if not math.isfinite(running):
                    raise TrainingDiverged(f"the training loss became {running} at step {i + 1} of the epoch")
                bar.set_postfix(loss=f"{running:.2f}", refresh=False)
        if not all(torch.isfinite(p).all() for p in self.model.parameters()):
            raise TrainingDiverged("the model's weights became NaN or infinite")
        return (total / n).tolist()

    def _corrupted(self, xb: torch.Tensor) -> torch.Tensor:
        """``corrupt(xb)``, refused unless it is a float tensor of xb's shape (a check of shapes only: no host sync)."""
        out = self.corrupt(xb)
        if not isinstance(out, torch.Tensor) or out.shape != xb.shape or not out.is_floating_point():
            got = f"shape {tuple(out.shape)}, {out.dtype}" if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"corrupt must return a float tensor of its input's shape {tuple(xb.shape)}; got {got}")
        return out

    @torch.no_grad()
    def _evaluate(self, x: torch.Tensor, y: torch.Tensor | None = None) -> float:
        """recon + beta * KL per example (nats) on prepared data (and labels), with fixed reparameterisation noise:
        the target objective, without warm-up, free bits or corruption (the negative ELBO for beta = 1)."""
        was_training = self.model.training
        self.model.eval()
        total = 0.0
        with torch.random.fork_rng(devices=self._rng_devices()):
            torch.manual_seed(self.seed + 1)
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                for i in range(0, x.shape[0], self.eval_batch_size):
                    xb = self._to_device(x[i:i + self.eval_batch_size])
                    yb = self._to_device(y[i:i + self.eval_batch_size]) if y is not None else None
                    total += self._loss_terms(xb, self.beta, labels=yb)[0].float()
        self.model.train(was_training)
        return float(total) / x.shape[0]

    def evaluate(self, data) -> float:
        """``recon + beta * KL`` per example, in nats, on ``data`` (not binarized): the negative ELBO for beta = 1,
        whatever the warm-up, free bits or corruption (for an Autoencoder, the reconstruction loss). A conditional
        model needs an (images, labels) pair."""
        x = self.prepare(data, "data")
        return self._evaluate(x, self.prepare_labels(data, x, "data"))

    def _rng_devices(self) -> list:
        return [self.device] if self.device.type == "cuda" else []

    @staticmethod
    def _generator(seed: int, device: torch.device) -> torch.Generator:
        """A seeded generator for the batch order and binarization of data that live on ``device``."""
        return torch.Generator(device=device if device.type in ("cpu", "cuda") else "cpu").manual_seed(seed)

    @staticmethod
    def _binarize(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Fresh Bernoulli samples with the grey values as probabilities."""
        if gen.device == x.device:
            return torch.bernoulli(x, generator=gen)
        return (torch.rand(x.shape, generator=gen, device=gen.device).to(x.device) < x).float()

    def _snapshot(self) -> tuple[dict, dict, dict]:
        """Copies of the weights and optimiser state, and the length of each list in the history."""
        model = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
        lengths = {f.name: len(getattr(self.history, f.name)) for f in fields(self.history)}
        return model, copy.deepcopy(self.optimizer.state_dict()), lengths

    def _restore(self, snapshot) -> int:
        """Back to a snapshot: weights, optimiser state, and the history as it was. Returns the epochs completed."""
        model, optimizer, lengths = snapshot
        self.model.load_state_dict(model)
        self.optimizer.load_state_dict(optimizer)
        for name, n in lengths.items():
            del getattr(self.history, name)[n:]
        return len(self.history.train_loss)

    # ---- the loop
    def resume(self) -> int:
        """Continue the run stored in ``self.checkpoint``: its weights, optimiser state and history replace the
        trainer's. Returns the number of epochs it holds; 0, changing nothing, when the file does not exist yet."""
        if self.checkpoint is None:
            raise ValueError("resuming needs the checkpoint path of the run: checkpoint=PATH")
        check_destination(self.checkpoint, self.model, self.overwrite)
        if not Path(self.checkpoint).exists():
            return 0
        _, optimizer_state, history = load_checkpoint(self.checkpoint, self.model)
        if optimizer_state is None or history is None:
            raise CheckpointError(f"{self.checkpoint} holds no optimiser state or history to resume from (the "
                                  f"checkpoints that training writes hold both)")
        self.optimizer.load_state_dict(optimizer_state)
        self.history = history
        return len(history.train_loss)

    def fit(self, train, epochs: int, test=None) -> History:
        """Train for ``epochs`` more epochs on ``train`` (images in [0, 1], or what ``load_dataset`` returns).

        Returns the history (also ``self.history``). A NaN/inf loss raises :class:`TrainingDiverged` after giving
        the model back the weights of the last completed epoch. Ctrl-C (KeyboardInterrupt) does the same, brings
        the checkpoint (if any) to that epoch too, and then propagates, so a loop of trainings stops; the
        history of the completed epochs stays in ``self.history``.
        """
        _positive("epochs", epochs, integer=True)
        mode = self._mode(train)
        if mode not in BINARIZE:
            raise ValueError(f"binarize must be one of {BINARIZE}; got {mode!r}")
        x_train = self.prepare(train, "train")
        x_test = self.prepare(test, "test") if test is not None else None
        y_train = self.prepare_labels(train, x_train, "train")
        y_test = self.prepare_labels(test, x_test, "test") if test is not None else None
        if mode == "static":
            x_train = (x_train > STATIC_THRESHOLD).float()
        if x_test is not None and mode is not None:
            # The test bits are drawn on the CPU, so they are the same whatever the device (and equal to
            # torch.bernoulli(test, generator=torch.Generator().manual_seed(TEST_BINARIZE_SEED))).
            x_test = ((x_test > STATIC_THRESHOLD).float() if mode == "static"
                      else self._binarize(x_test.cpu(), self._generator(TEST_BINARIZE_SEED, torch.device("cpu")))
                      .to(x_test.device))
        if self.checkpoint is not None:
            check_destination(self.checkpoint, self.model, self.overwrite)  # before training, not after an epoch
        done = len(self.history.train_loss)
        saved = done  # the completed epochs that the checkpoint holds, as far as this call is concerned
        good = self._snapshot()
        steps = math.ceil(x_train.shape[0] / self.batch_size)
        bar = tqdm(total=epochs * steps, disable=not self.verbose, unit="batch", dynamic_ncols=True)
        epoch = 0
        self.model.train()
        try:
            with torch.random.fork_rng(devices=self._rng_devices()), flush_denormals(self.device):
                for epoch in range(epochs):
                    bar.set_description(f"epoch {done + epoch + 1}/{done + epochs}")
                    start = time.perf_counter()
                    data_seed, noise_seed = epoch_seeds(self.seed, done + epoch)
                    gen = self._generator(data_seed, x_train.device)
                    torch.manual_seed(noise_seed)
                    xe = self._binarize(x_train, gen) if mode == "dynamic" else x_train
                    # The run's optimiser steps are numbered from 1; an epoch has `steps` of them.
                    loss, recon, kl = self._train_epoch(xe, gen, bar, first_step=(done + epoch) * steps + 1, y=y_train)
                    seconds = time.perf_counter() - start
                    test_loss = self._evaluate(x_test, y_test) if x_test is not None else None
                    self._record(loss, recon, kl, seconds, test_loss, self.kl_weight((done + epoch + 1) * steps, steps))
                    good = self._snapshot()
                    if self.checkpoint is not None:
                        save_checkpoint(self.checkpoint, self.model, self.optimizer, self.history)
                        saved = len(self.history.train_loss)
        except TrainingDiverged as err:
            completed = self._restore(good)
            bar.close()
            raise TrainingDiverged(f"training stopped in epoch {done + epoch + 1}: {err}. The model has the weights "
                                   f"of the last completed epoch ({completed}). Try a smaller learning rate.") from None
        except KeyboardInterrupt:
            completed = self._restore(good)
            if self.checkpoint is not None and completed > saved:  # interrupted while writing it: write it whole
                save_checkpoint(self.checkpoint, self.model, self.optimizer, self.history)
            bar.close()
            where = (f"; {self.checkpoint} holds both: the same fit call with resume=True finishes the run"
                     if self.checkpoint is not None else "")
            raise KeyboardInterrupt(f"training interrupted in epoch {done + epoch + 1}: the model has the weights of "
                                    f"the last completed epoch ({completed}), the Trainer's history their losses"
                                    f"{where}") from None
        bar.close()
        return self.history

    def _record(self, loss: float, recon: float, kl: float, seconds: float, test_loss: float | None,
                kl_weight: float) -> None:
        """Append an epoch to the history; ``kl_weight`` is the KL weight of its last step."""
        h = self.history
        if test_loss is not None:
            h.test_loss.append(test_loss)
        if self.vae:
            h.train_recon.append(recon)
            h.train_kl.append(kl)
            h.beta.append(kl_weight)
        h.epoch_seconds.append(seconds)
        h.train_loss.append(loss)  # last: the number of completed epochs is len(train_loss)


def fit(model, train, *, epochs: int, batch_size: int = 128, lr: float = 1e-3, test=None, device=None,
        seed: int = 0, beta: float = 1.0, kl_warmup: float = 0, free_bits: float = 0.0, corrupt=None,
        verbose: bool = True, checkpoint=None, binarize: str | None = None, resume: bool = False,
        overwrite: bool = False, **trainer_options) -> History:
    """Train ``model`` in place for ``epochs`` epochs with Adam and return its :class:`History`.

    A VAE is trained on the negative ELBO (``beta`` weighs the KL term), an Autoencoder on reconstruction loss;
    losses are per example, in nats. ``train`` / ``test``: images in [0, 1] as (N, in_dim) or (N, C, H, W), or
    what ``load_dataset`` returns. See :class:`Trainer` for the other arguments (``amp``, ``check_every``).

    kl_warmup: epochs over which the KL weight rises linearly from 0 to ``beta``, step by step (Bowman et al.,
        2016; Sønderby et al., 2016); ``History.beta`` records the weight at the end of each epoch.
    free_bits: a floor in nats per latent dimension (Kingma et al., 2016): the objective uses
        ``sum_j max(free_bits, KL_j)``, KL_j being dimension j's KL averaged over the mini-batch.
    corrupt: denoising: a function applied to each training batch, (B, in_dim) -> (B, in_dim), such as
        ``vaelib.data.gaussian_noise(sigma)`` or ``vaelib.data.masking_noise(p)``; the loss compares the reconstruction
        with the clean batch (an Autoencoder or a VAE). Test losses are on clean inputs.
    With any of them, ``History.train_loss`` is the objective optimised, ``train_recon`` and ``train_kl`` the true terms
    (-E_q log p(x|z) and KL), and ``test_loss`` ``recon + beta * KL`` with the target ``beta`` and no floor (the
    negative ELBO for beta = 1, comparable across runs).

    checkpoint: a file written after every epoch (model, optimiser state, history). A folder, or a file holding
        another model's checkpoint, is refused before training unless ``overwrite=True``.
    resume: continue the run stored in ``checkpoint`` (weights, optimiser state, history); ``epochs`` is the
        run's total, so rerunning the same call after a crash or Ctrl-C trains only the remaining epochs, and
        returns at once when the run is complete. With no file yet, training starts from the beginning. On the
        CPU, a resumed run ends with exactly the weights and losses of the same run done in one go.
    Ctrl-C gives the model the weights of its last completed epoch (the checkpoint holds them too) and then
    raises KeyboardInterrupt, so a loop of ``fit`` calls stops.
    """
    trainer = Trainer(model, batch_size=batch_size, lr=lr, device=device, seed=seed, beta=beta, kl_warmup=kl_warmup,
                      free_bits=free_bits, corrupt=corrupt, verbose=verbose, checkpoint=checkpoint,
                      binarize=binarize, overwrite=overwrite, **trainer_options)
    if not resume:
        return trainer.fit(train, epochs=epochs, test=test)
    _positive("epochs", epochs, integer=True)
    done = trainer.resume()
    if done > epochs:
        raise ValueError(f"{checkpoint} holds {done} epochs, more than epochs={epochs} (with resume=True, epochs is "
                         f"the run's total)")
    if done == epochs:
        if verbose:
            print(f"vaelib: {checkpoint} holds the complete run ({done} epochs); nothing to train", file=sys.stderr)
        return trainer.history
    if done and verbose:
        print(f"vaelib: resuming from {checkpoint} after epoch {done} of {epochs}", file=sys.stderr)
    return trainer.fit(train, epochs=epochs - done, test=test)
