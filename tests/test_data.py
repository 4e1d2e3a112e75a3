"""load_dataset: shapes, ranges, splits, binarization, the data folder, and the offline error."""
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch

from vaelib import data as data_module
from vaelib.data import DatasetDamagedError, DatasetNotFoundError, ImageData, data_root, load_dataset


def test_digits_shapes_range_dtype_and_split():
    from sklearn.datasets import load_digits

    xtr, ytr = load_dataset("digits")
    xte, yte = load_dataset("digits", split="test")
    assert xtr.shape == (1500, 1, 8, 8) and xte.shape == (297, 1, 8, 8)
    assert xtr.dtype == torch.float32 and ytr.dtype == torch.int64
    assert ytr.shape == (1500,) and yte.shape == (297,)
    assert float(xtr.min()) == 0.0 and float(xtr.max()) == 1.0
    # The oracle: scikit-learn's own arrays, grey levels 0..16 scaled by 1/16, split after the first 1500 images.
    ref = load_digits()
    both = torch.cat([xtr, xte]).reshape(-1, 8, 8).numpy()
    np.testing.assert_array_equal(both * 16, ref.images)
    np.testing.assert_array_equal(torch.cat([ytr, yte]).numpy(), ref.target)


def test_returns_fresh_tensors():
    x, y = load_dataset("digits")
    x.zero_()
    y.zero_()
    x2, y2 = load_dataset("digits")
    assert float(x2.max()) == 1.0 and int(y2.max()) == 9


def test_static_binarization_thresholds_once():
    grey, _ = load_dataset("digits")
    binary, _ = load_dataset("digits", binarize="static")
    assert set(binary.unique().tolist()) == {0.0, 1.0}
    torch.testing.assert_close(binary, (grey > 0.5).float())


def test_dynamic_binarization_returns_marked_grey_images():
    d = load_dataset("digits", binarize="dynamic")
    images, labels = d  # still unpacks as a pair
    assert isinstance(d, ImageData) and isinstance(d, tuple) and len(d) == 2
    assert d.binarize == "dynamic" and d.images is images and d.labels is labels
    torch.testing.assert_close(images, load_dataset("digits")[0])
    assert load_dataset("digits").binarize is None


@pytest.mark.parametrize("kwargs, valid", [
    (dict(name="cifar"), "'mnist', 'fashion-mnist', 'digits'"),
    (dict(name="digits", split="validation"), "'train', 'test'"),
    (dict(name="digits", binarize="yes"), "'static', 'dynamic'"),
])
def test_unknown_choices_list_the_valid_values(kwargs, valid):
    with pytest.raises(ValueError, match=valid):
        load_dataset(**kwargs)


def test_data_root_argument_then_environment_then_user_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("VAELIB_DATA", str(tmp_path / "env"))
    assert data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data_root() == tmp_path / "env"
    monkeypatch.delenv("VAELIB_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_root() == tmp_path / "xdg" / "vaelib" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert data_root() == Path.home() / ".cache" / "vaelib" / "data"


@pytest.mark.parametrize("failure", [URLError("[Errno -3] Temporary failure in name resolution"),
                                     TimeoutError("timed out")])
def test_offline_without_files_says_how_to_get_them(monkeypatch, tmp_path, failure):
    import torchvision.datasets.mnist as tv_mnist

    def offline(url, *args, **kwargs):  # what urllib raises without a network; nothing is contacted
        raise failure

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", offline)
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("mnist", root=tmp_path)
    msg = str(info.value)
    assert "VAELIB_DATA" in msg and str(tmp_path / "MNIST" / "raw") in msg
    assert "train-images-idx3-ubyte.gz" in msg and "ossci-datasets" in msg and "torchvision" in msg
    assert info.value.__cause__ is None and info.value.__suppress_context__  # no urllib traceback attached
    assert isinstance(info.value, FileNotFoundError)

    with pytest.raises(DatasetNotFoundError, match="FashionMNIST/raw"):
        load_dataset("fashion-mnist", split="test", root=tmp_path)


def _have(name):
    return (data_root() / name / "raw" / "train-images-idx3-ubyte.gz").exists()


@pytest.mark.skipif(not _have("MNIST"), reason=f"no MNIST files under {data_root()} (set VAELIB_DATA to a folder "
                                               "holding MNIST/raw/*.gz; CI does)")
def test_mnist_from_the_data_folder():
    x, y = load_dataset("mnist")
    assert x.shape == (60000, 1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert float(x.min()) == 0.0 and float(x.max()) == 1.0
    # Facts about the files, checked independently (see the data folder's README).
    assert torch.bincount(y).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert abs(float(x.mean()) - 0.1307) < 1e-4
    xt, yt = load_dataset("mnist", split="test", binarize="static")
    assert xt.shape == (10000, 1, 28, 28) and set(xt.unique().tolist()) == {0.0, 1.0}
    assert torch.bincount(yt).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.mark.skipif(not _have("FashionMNIST"), reason=f"no Fashion-MNIST files under {data_root()} (set "
                                                      "VAELIB_DATA to a folder holding FashionMNIST/raw/*.gz)")
def test_fashion_mnist_from_the_data_folder():
    x, y = load_dataset("fashion-mnist", split="test")
    assert x.shape == (10000, 1, 28, 28) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert torch.bincount(y).tolist() == [1000] * 10


# ---------------------------------------------------------------- downloads never hang
class SilentServer:
    """A local TCP server that accepts connections and never answers (a stalled network). After ``give_up_s`` it
    closes them, so that code without a timeout ends too (with another error, too late)."""

    def __init__(self, give_up_s: float = 20.0):
        import socket
        import threading

        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted, self.stop = [], threading.Event()
        self.give_up_s = give_up_s
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        import time

        self.sock.settimeout(0.1)
        end = time.monotonic() + self.give_up_s
        while not self.stop.is_set() and time.monotonic() < end:
            try:
                conn, _ = self.sock.accept()
                self.accepted.append(conn)
            except OSError:
                pass
        for conn in self.accepted:
            conn.close()

    def close(self):
        self.stop.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture
def silent_mirror(monkeypatch):
    import torchvision.datasets as tv

    server = SilentServer()
    for cls in (tv.MNIST, tv.FashionMNIST):
        monkeypatch.setattr(cls, "mirrors", [f"http://127.0.0.1:{server.port}/"])
    yield server
    server.close()


def test_a_stalled_network_times_out_with_the_offline_message(silent_mirror, monkeypatch, tmp_path):
    import time

    monkeypatch.setenv("VAELIB_DOWNLOAD_TIMEOUT", "0.5")
    start = time.monotonic()
    with pytest.raises(DatasetNotFoundError) as info:
        load_dataset("mnist", root=tmp_path)
    elapsed = time.monotonic() - start
    assert silent_mirror.accepted, "the download never reached the stalled server"
    assert elapsed < 10, f"load_dataset waited {elapsed:.0f} s on a network that does not answer"
    msg = str(info.value)
    assert "VAELIB_DATA" in msg and "could not be downloaded" in msg and "VAELIB_DOWNLOAD_TIMEOUT" in msg
    assert "0.5 s" in msg


def test_the_download_timeout_defaults_to_60_s_and_is_checked(monkeypatch):
    from vaelib.data import download_timeout

    monkeypatch.delenv("VAELIB_DOWNLOAD_TIMEOUT", raising=False)
    assert download_timeout() == 60
    monkeypatch.setenv("VAELIB_DOWNLOAD_TIMEOUT", "2.5")
    assert download_timeout() == 2.5
    for bad in ("0", "-1", "soon", "inf", "nan"):
        monkeypatch.setenv("VAELIB_DOWNLOAD_TIMEOUT", bad)
        with pytest.raises(ValueError, match="VAELIB_DOWNLOAD_TIMEOUT must be a positive number"):
            download_timeout()


# ---------------------------------------------------------------- damaged data files are named
MNIST_RAW = data_root() / "MNIST" / "raw"


@pytest.fixture
def mnist_copy(tmp_path, monkeypatch):
    """A copy of the real MNIST .gz files in a fresh data folder; downloads fail at once, as offline."""
    import shutil

    import torchvision.datasets.mnist as tv_mnist

    if not all((MNIST_RAW / f).is_file() for f in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                                    "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")):
        pytest.skip(f"no MNIST .gz files under {MNIST_RAW} (set VAELIB_DATA to a folder holding MNIST/raw/*.gz; CI does)")

    def offline(url, *args, **kwargs):
        raise URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", offline)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz"):
        shutil.copyfile(MNIST_RAW / name, raw / name)
        (raw / name).chmod(0o644)
    return raw


def _extract_all(raw):
    import gzip

    for gz in raw.glob("*.gz"):
        with gzip.open(gz) as f:
            (raw / gz.name[:-3]).write_bytes(f.read())


@pytest.mark.parametrize("damage", ["truncated", "corrupted"])
def test_a_damaged_gz_is_named_with_what_to_do(mnist_copy, damage):
    gz = mnist_copy / "t10k-images-idx3-ubyte.gz"
    data = bytearray(gz.read_bytes())
    if damage == "truncated":
        data = data[: len(data) // 2]
    else:
        data[len(data) // 2] ^= 0xFF                   # same size, one byte changed
    gz.write_bytes(bytes(data))
    with pytest.raises(DatasetDamagedError) as info:
        load_dataset("mnist", split="test", root=mnist_copy.parent.parent)
    msg = str(info.value)
    assert str(gz) in msg and "damaged" in msg and "Delete it" in msg and "copy a good copy" in msg


@pytest.mark.parametrize("damage", ["truncated", "header", "too long"])
def test_a_damaged_extracted_file_is_named_with_what_to_do(mnist_copy, damage):
    _extract_all(mnist_copy)
    assert load_dataset("mnist", split="test", root=mnist_copy.parent.parent)[0].shape == (10000, 1, 28, 28)
    idx = mnist_copy / "t10k-labels-idx1-ubyte"
    data = bytearray(idx.read_bytes())
    if damage == "truncated":
        data = data[:5000]
    elif damage == "header":
        data[3] = 0x07                                   # the magic number's type byte
    else:
        data += b"\0" * 10
    idx.write_bytes(bytes(data))
    data_module._torchvision.cache_clear()              # the files are read once per process
    with pytest.raises(DatasetDamagedError) as info:
        load_dataset("mnist", split="test", root=mnist_copy.parent.parent)
    msg = str(info.value)
    assert str(idx) in msg and "damaged" in msg and "Delete it" in msg and "extracts it again" in msg


def test_a_damaged_gz_is_downloaded_again_when_a_mirror_answers(mnist_copy, monkeypatch, tmp_path):
    """Online, torchvision replaces a .gz whose checksum is wrong (a download cut short leaves one): no error then."""
    import functools
    import http.server
    import shutil
    import threading

    import torchvision.datasets as tv

    monkeypatch.undo()                                   # downloads allowed again, from a local mirror only
    served = tmp_path / "mirror"
    served.mkdir()
    shutil.copyfile(MNIST_RAW / "t10k-labels-idx1-ubyte.gz", served / "t10k-labels-idx1-ubyte.gz")
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    handler = functools.partial(Quiet, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setattr(tv.MNIST, "mirrors", [f"http://127.0.0.1:{server.server_address[1]}/"])
        gz = mnist_copy / "t10k-labels-idx1-ubyte.gz"
        gz.write_bytes(gz.read_bytes()[:1000])           # cut short
        _, labels = load_dataset("mnist", split="test", root=mnist_copy.parent.parent)
        assert torch.bincount(labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
        assert gz.read_bytes() == (MNIST_RAW / gz.name).read_bytes()
    finally:
        server.shutdown()
        server.server_close()


# ------------------------------------------------------------------ corruptions for denoising


def test_gaussian_noise_adds_noise_of_the_given_scale_and_clamps():
    from vaelib.data import gaussian_noise

    corrupt = gaussian_noise(0.1)
    assert repr(corrupt) == "gaussian_noise(sigma=0.1)" and corrupt.config == {"name": "gaussian_noise", "sigma": 0.1}
    x = torch.full((2000, 64), 0.5)
    torch.manual_seed(0)
    y = corrupt(x)
    torch.manual_seed(0)
    assert torch.equal(corrupt(x), y)                     # torch's global RNG: reproducible under a seed
    assert y.shape == x.shape and torch.equal(x, torch.full((2000, 64), 0.5))   # the input is left alone
    # Five standard deviations from both ends: no clamping, so the mean and the scale are those of the noise.
    assert abs(y.mean().item() - 0.5) < 0.002 and abs(y.std().item() - 0.1) < 0.002
    edges = gaussian_noise(0.5)(torch.cat([torch.zeros(500, 64), torch.ones(500, 64)]))
    assert edges.min() == 0 and edges.max() == 1
    assert ((edges[:500] == 0).float().mean() - 0.5).abs() < 0.02   # half the noise pushes a black pixel below 0
    assert torch.equal(gaussian_noise(0)(x), x)


def test_masking_noise_zeroes_each_pixel_with_probability_p():
    from vaelib.data import masking_noise

    corrupt = masking_noise(0.3)
    assert repr(corrupt) == "masking_noise(p=0.3)" and corrupt.config == {"name": "masking_noise", "p": 0.3}
    torch.manual_seed(1)
    x = torch.rand(1000, 64) * 0.9 + 0.1                   # no pixel is 0 to begin with
    y = corrupt(x)
    zeroed = y == 0
    assert abs(zeroed.float().mean().item() - 0.3) < 0.01
    assert torch.equal(y[~zeroed], x[~zeroed])            # the other pixels are kept as they were
    assert torch.equal(masking_noise(0)(x), x) and masking_noise(1)(x).abs().max() == 0


@pytest.mark.parametrize("make, value, name", [
    ("gaussian_noise", -0.1, "sigma"), ("gaussian_noise", float("nan"), "sigma"), ("masking_noise", -0.1, "p"),
    ("masking_noise", 1.5, "p"), ("masking_noise", "0.5", "p"),
])
def test_corruption_parameters_are_checked(make, value, name):
    with pytest.raises(ValueError, match=name):
        getattr(data_module, make)(value)
