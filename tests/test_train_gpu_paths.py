"""The trainer's GPU-only code, run on the CPU: autocast (bfloat16, and float16 with the gradient scaler), the
choice of the autocast dtype, and the decision to keep data on the host when the GPU lacks memory.

On a GPU the same paths are exercised for real by tests/test_cuda.py (``benchmarks/gpu_check.py`` runs it).
"""
import math

import pytest
import torch

import vaelib
from vaelib import losses, train
from vaelib.data import load_dataset
from vaelib.train import Trainer, data_home


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits"), load_dataset("digits", split="test")


def small_vae(seed=0):
    torch.manual_seed(seed)
    return vaelib.VAE(64, hidden=(32,), latent_dim=4)


def test_automatic_autocast_dtype_follows_the_gpu(monkeypatch):
    cuda = torch.device("cuda", 0)
    assert train._amp_dtype(torch.device("cpu"), None) is None
    assert train._amp_dtype(cuda, False) is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert train._amp_dtype(cuda, None) is torch.bfloat16           # Ampere and later
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert train._amp_dtype(cuda, True) is torch.float16            # a T4: bfloat16 only emulated
    assert train._amp_dtype(torch.device("cpu"), torch.bfloat16) is torch.bfloat16
    with pytest.raises(ValueError, match="amp must be"):
        train._amp_dtype(cuda, torch.float64)
    with pytest.raises(ValueError, match="amp must be"):
        train._amp_dtype(cuda, "yes")


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=["bfloat16", "float16+scaler"])
def test_mixed_precision_training_matches_float32(digits, dtype):
    """The autocast path trains as well as float32: the forward really runs in ``dtype``, the recorded losses stay
    float32 sums, and after 6 epochs the test loss is within 1 nat of the float32 run (about 3 % of the loss)."""
    trn, tst = digits
    ref = vaelib.fit(small_vae(), trn, test=tst, epochs=6, device="cpu", verbose=False)
    model = small_vae()
    trainer = Trainer(model, device="cpu", amp=dtype, verbose=False)
    assert (trainer.scaler is not None) == (dtype == torch.float16)
    seen = []
    model.decoder[0].register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    h = trainer.fit(trn, epochs=6, test=tst)
    assert set(seen) == {dtype}
    assert all(math.isfinite(v) for v in h.train_loss + h.test_loss)
    assert h.test_loss[-1] < h.test_loss[0] - 5                           # it learns
    assert abs(h.test_loss[-1] - ref.test_loss[-1]) < 1.0
    assert all(p.dtype == torch.float32 for p in model.parameters())      # master weights stay float32


def test_gradient_scaler_skips_a_step_with_infinite_gradients():
    """With float16 the scaler, not the optimiser, decides: a step whose gradients overflow is skipped."""
    model = small_vae()
    trainer = Trainer(model, device="cpu", amp=torch.float16, verbose=False)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    scale = trainer.scaler.get_scale()
    x = torch.rand(16, 64)
    x[0, 0] = float("inf")        # an infinite input makes the gradients inf/NaN
    trainer._step(x)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert trainer.scaler.get_scale() < scale


def test_data_stay_on_the_host_when_the_gpu_lacks_memory(monkeypatch):
    cuda = torch.device("cuda", 0)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (1000, 4000))
    assert data_home(cuda, 400) == cuda                   # fits in half the free memory
    assert data_home(cuda, 600) == torch.device("cpu")    # does not: slice batches on the host
    assert data_home(cuda, 600, keep_on_host=False) == cuda
    assert data_home(cuda, 10, keep_on_host=True) == torch.device("cpu")
    assert data_home(torch.device("cpu"), 10**12) == torch.device("cpu")


def test_data_kept_on_the_host_train_as_on_the_device(digits):
    """keep_data_on_host=True runs the host-slicing loop; on the CPU it must give exactly the device path's result."""
    trn, tst = digits
    runs = []
    for keep in (False, True):
        model = small_vae()
        h = vaelib.fit(model, trn, test=tst, epochs=2, device="cpu", verbose=False, keep_data_on_host=keep)
        runs.append((h.test_loss, {k: v.clone() for k, v in model.state_dict().items()}))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(runs[0][1][k], runs[1][1][k]) for k in runs[0][1])


def test_evaluation_under_autocast_agrees_with_float32(digits):
    model = small_vae()
    vaelib.fit(model, digits[0], epochs=3, device="cpu", verbose=False)
    x = Trainer(model, device="cpu", verbose=False).prepare(digits[1])
    full = Trainer(model, device="cpu", verbose=False)._evaluate(x)
    mixed = Trainer(model, device="cpu", amp=torch.bfloat16, verbose=False)._evaluate(x)
    assert abs(full - mixed) < 0.5 and abs(full + losses.elbo(model, x).mean().item()) < 2.0
