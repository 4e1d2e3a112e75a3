"""Datasets as whole tensors: MNIST and Fashion-MNIST through torchvision, scikit-learn's 8x8 digits offline.

``load_dataset`` returns every image of a split at once as float32 ``(N, 1, H, W)`` in ``[0, 1]`` and the labels
as int64 ``(N,)``. There are no per-sample transforms: the files are read into one tensor and scaled once, which is
what lets ``vaelib.fit`` slice batches straight out of memory.

Where the files live (first match wins): the ``root`` argument, the environment variable ``VAELIB_DATA``, a per-user
cache folder (``$XDG_CACHE_HOME/vaelib/data``, by default ``~/.cache/vaelib/data``). The folder uses torchvision's
layout, ``ROOT/MNIST/raw/*.gz`` and ``ROOT/FashionMNIST/raw/*.gz``; with internet access torchvision downloads the
files there the first time. Every network access has a timeout (``VAELIB_DOWNLOAD_TIMEOUT`` seconds, default 60),
and files on disk are checked before they are read (the ``.gz`` files against their published MD5 checksums, the
extracted copies against their headers and sizes), so a damaged file is named instead of misread.

``gaussian_noise`` and ``masking_noise`` corrupt a batch for a denoising autoencoder (``vaelib.fit(corrupt=...)``).
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import socket
from pathlib import Path

import torch

from . import checks

DATASETS = ("mnist", "fashion-mnist", "digits")
SPLITS = ("train", "test")
BINARIZE = (None, "static", "dynamic")
#: scikit-learn's digits has no official split: the first 1500 images are "train", the other 297 "test".
DIGITS_TRAIN_SIZE = 1500
#: ``binarize="static"`` sets a pixel to 1 where its grey value is strictly greater than this, else to 0.
STATIC_THRESHOLD = 0.5

_TORCHVISION = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
_SOURCES = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/ (a mirror of http://yann.lecun.com/exdb/mnist/)",
    "fashion-mnist": "https://github.com/zalandoresearch/fashion-mnist "
                     "(http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/)",
}
_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
          "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
#: Seconds that a download may wait for the network before it gives up (``VAELIB_DOWNLOAD_TIMEOUT`` overrides it).
DOWNLOAD_TIMEOUT = 60.0


class DatasetNotFoundError(FileNotFoundError):
    """The dataset's files are not on disk and could not be downloaded (e.g. no internet access)."""


class DatasetDamagedError(ValueError):
    """A dataset file on disk is truncated or corrupt (the message names it and says how to replace it)."""


class ImageData(tuple):
    """``(images, labels)``, as returned by :func:`load_dataset`, plus how the images are to be binarized.

    It unpacks like a plain pair (``images, labels = load_dataset(...)``). ``binarize`` is ``None``, ``"static"``
    (the images are already 0/1) or ``"dynamic"`` (the images are grey values; ``vaelib.fit`` draws fresh
    Bernoulli samples from them every epoch).
    """

    binarize: str | None

    def __new__(cls, images: torch.Tensor, labels: torch.Tensor, binarize: str | None = None):
        self = super().__new__(cls, (images, labels))
        self.binarize = binarize
        return self

    @property
    def images(self) -> torch.Tensor:
        return self[0]

    @property
    def labels(self) -> torch.Tensor:
        return self[1]

    def __repr__(self) -> str:
        return (f"ImageData(images={tuple(self[0].shape)} {self[0].dtype}, labels={tuple(self[1].shape)}, "
                f"binarize={self.binarize!r})")


# ------------------------------------------------------------------------------ corruptions (denoising)


class Corruption:
    """A corruption of a batch for denoising: called on images (B, in_dim) in [0, 1], it returns corrupted images of
    the same shape, drawing its noise from torch's global RNG (which ``vaelib.fit`` seeds every epoch).

    ``config`` (a dict of plain values) and ``repr`` describe it, e.g. ``gaussian_noise(sigma=0.5)``: that is what
    lets the model cache tell one denoising run from another. Made by :func:`gaussian_noise`, :func:`masking_noise`.
    """

    name = "corruption"

    def __init__(self, **params):
        self.params = params

    @property
    def config(self) -> dict:
        return {"name": self.name, **self.params}

    def __repr__(self) -> str:
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in self.params.items())})"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class _GaussianNoise(Corruption):
    name = "gaussian_noise"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return (x + self.params["sigma"] * torch.randn_like(x)).clamp_(0.0, 1.0)


class _MaskingNoise(Corruption):
    name = "masking_noise"

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        keep = torch.rand_like(x) >= self.params["p"]
        return x * keep.to(x.dtype)


def gaussian_noise(sigma: float) -> Corruption:
    """Additive Gaussian noise: x + sigma * eps with eps ~ N(0, I) per pixel, clamped to [0, 1] (a pixel value)."""
    checks.nonnegative("sigma", sigma)
    return _GaussianNoise(sigma=float(sigma))


def masking_noise(p: float) -> Corruption:
    """Masking noise (Vincent et al., 2008): each pixel independently set to 0 with probability ``p`` in [0, 1]."""
    checks.nonnegative("p", p)
    if p > 1:
        raise ValueError(f"p must be a probability in [0, 1]; got {p!r}")
    return _MaskingNoise(p=float(p))


# ------------------------------------------------------------------------------ datasets


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root``, else ``$VAELIB_DATA``, else ``~/.cache/vaelib/data`` (honouring XDG_CACHE_HOME)."""
    if root is not None:
        return Path(root).expanduser()
    if os.environ.get("VAELIB_DATA"):
        return Path(os.environ["VAELIB_DATA"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "vaelib" / "data"


def _check_choice(what: str, value, valid) -> None:
    if value not in valid:
        raise ValueError(f"{what} must be one of {', '.join(repr(v) for v in valid)}; got {value!r}")


def load_dataset(name: str, split: str = "train", root=None, binarize: str | None = None) -> ImageData:
    """Load a whole split as ``(images, labels)``: float32 ``(N, 1, H, W)`` in [0, 1] and int64 ``(N,)``.

    name: ``"mnist"`` or ``"fashion-mnist"`` (28x28, 60,000 train / 10,000 test images, read through
        torchvision) or ``"digits"`` (scikit-learn's 8x8 digits, shipped with scikit-learn, grey levels 0..16
        divided by 16; the first 1500 images are the train split, the remaining 297 the test split).
    split: ``"train"`` or ``"test"``.
    root: the data folder (torchvision layout); default ``$VAELIB_DATA``, else ``~/.cache/vaelib/data``.
    binarize: ``None`` (grey values), ``"static"`` (each pixel thresholded once: 1 where the grey value is
        > 0.5) or ``"dynamic"`` (grey values are returned and marked so that ``vaelib.fit`` draws fresh
        Bernoulli samples from them every epoch).

    Each call returns new tensors, so modifying them does not affect later calls.
    Raises ValueError for an unknown name, split or binarize, :class:`DatasetNotFoundError` when the files
    are missing and cannot be downloaded (no network, or none that answers within ``VAELIB_DOWNLOAD_TIMEOUT``
    seconds, default 60), and :class:`DatasetDamagedError` when a file on disk is truncated or corrupt.
    """
    _check_choice("name", name, DATASETS)
    _check_choice("split", split, SPLITS)
    _check_choice("binarize", binarize, BINARIZE)
    if name == "digits":
        pixels, labels = _digits(split)
        images = pixels.to(torch.float32).div_(16.0)
    else:
        pixels, labels = _torchvision(name, split == "train", str(data_root(root).resolve()))
        images = pixels.to(torch.float32).div_(255.0)
    images = images.unsqueeze(1)  # (N, 1, H, W)
    if binarize == "static":
        images = (images > STATIC_THRESHOLD).to(torch.float32)
    return ImageData(images, labels.clone(), binarize)


@functools.lru_cache(maxsize=None)
def _digits(split: str):
    """scikit-learn's digits as uint8 (N, 8, 8) grey levels 0..16 and int64 labels; cached (never modified)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = torch.as_tensor(bunch.images, dtype=torch.uint8)
    labels = torch.as_tensor(bunch.target, dtype=torch.int64)
    part = slice(None, DIGITS_TRAIN_SIZE) if split == "train" else slice(DIGITS_TRAIN_SIZE, None)
    return pixels[part], labels[part]


@functools.lru_cache(maxsize=8)
def _torchvision(name: str, train: bool, root: str):
    """The raw uint8 (N, 28, 28) images and int64 labels, read once per process (cached; never modified)."""
    from torchvision import datasets

    cls = getattr(datasets, _TORCHVISION[name])
    folder = Path(root) / _TORCHVISION[name] / "raw"
    _check_extracted(name, folder, cls.resources)
    timeout = download_timeout()
    try:
        with _network_timeout(timeout):
            ds = cls(root, train=train, download=True)  # replaces a damaged .gz by itself when it can download
    except (RuntimeError, OSError) as err:  # torchvision's "Error downloading ...", URLError, timeouts
        _check_archives(name, folder, cls.resources)  # a damaged .gz that could not be replaced: name it
        raise DatasetNotFoundError(_missing_message(name, root, err, timeout)) from None
    return ds.data, ds.targets.to(torch.int64)


def download_timeout() -> float:
    """``$VAELIB_DOWNLOAD_TIMEOUT`` in seconds (a positive number), else :data:`DOWNLOAD_TIMEOUT`."""
    value = os.environ.get("VAELIB_DOWNLOAD_TIMEOUT", "").strip()
    if not value:
        return DOWNLOAD_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise ValueError(f"VAELIB_DOWNLOAD_TIMEOUT must be a positive number of seconds; got {value!r}")
    return seconds


@contextlib.contextmanager
def _network_timeout(seconds: float):
    """Every socket opened inside the block gives up after ``seconds`` without an answer (torchvision's downloads
    call urllib without a timeout, which otherwise waits forever on a network that accepts and never answers)."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


# The IDX files inside the archives: (magic number, shape) by file name; MNIST and Fashion-MNIST share them.
_IDX = {"train-images-idx3-ubyte": (2051, (60000, 28, 28)), "train-labels-idx1-ubyte": (2049, (60000,)),
        "t10k-images-idx3-ubyte": (2051, (10000, 28, 28)), "t10k-labels-idx1-ubyte": (2049, (10000,))}


def _check_extracted(name: str, folder: Path, resources) -> None:
    """Refuse an extracted IDX file whose header or size is wrong, before torchvision misreads it."""
    for archive, _ in resources:
        gz, idx = folder / archive, folder / archive[:-len(".gz")]
        problem = _idx_problem(idx, *_IDX[idx.name]) if idx.is_file() else None
        if problem:
            raise DatasetDamagedError(
                f"{idx} is damaged ({problem}). Delete it: load_dataset extracts it again from {gz.name} (or "
                f"downloads that, given internet access); or copy a good copy there from {_SOURCES[name]}.")


def _check_archives(name: str, folder: Path, resources) -> None:
    """Refuse a ``.gz`` whose MD5 differs from the published one (where no extracted copy stands in for it)."""
    for archive, md5 in resources:
        gz, idx = folder / archive, folder / archive[:-len(".gz")]
        if gz.is_file() and not idx.is_file() and _md5(gz) != md5:
            raise DatasetDamagedError(
                f"{gz} is damaged: truncated or corrupt (its MD5 checksum is not the published file's, {md5}). Delete "
                f"it and call load_dataset again with internet access (torchvision downloads it afresh), or copy a "
                f"good copy there from {_SOURCES[name]}.")


def _idx_problem(path: Path, magic: int, shape: tuple) -> str | None:
    """What is wrong with an IDX file (big-endian magic number, dimensions, then the bytes), or None."""
    header_size = 4 * (1 + len(shape))
    with open(path, "rb") as f:
        header = f.read(header_size)
    size = path.stat().st_size
    if len(header) < header_size:
        return f"{size} bytes, shorter than its {header_size}-byte header"
    found = [int.from_bytes(header[i:i + 4], "big") for i in range(0, header_size, 4)]
    if found != [magic, *shape]:
        return f"its header reads {found}, not {[magic, *shape]}"
    expected = header_size + int(torch.Size(shape).numel())
    if size != expected:
        return f"{size:,} bytes instead of {expected:,}: truncated" if size < expected else f"{size:,} bytes instead of {expected:,}"
    return None


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _missing_message(name: str, root: str, err: Exception, timeout: float) -> str:
    folder = Path(root) / _TORCHVISION[name] / "raw"
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    reason = lines[-1] if lines else type(err).__name__  # torchvision lists every mirror; the last error is enough
    if isinstance(err, TimeoutError) or "timed out" in reason:
        reason += f"; no answer within {timeout:g} s (VAELIB_DOWNLOAD_TIMEOUT sets the limit)"
    return (
        f"The {name} files are not in {folder} and could not be downloaded ({reason}).\n"
        f"Either give torchvision internet access (it then downloads them there by itself), or put the four files\n"
        f"  {', '.join(_FILES)}\n"
        f"from {_SOURCES[name]} in a folder in torchvision's layout, DIR/{_TORCHVISION[name]}/raw/*.gz, and set\n"
        f"  VAELIB_DATA=DIR   (or pass root=DIR to load_dataset)."
    )
