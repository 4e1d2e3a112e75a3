"""The trainer and the losses on a CUDA GPU: what only a GPU can run (skipped without one).

``benchmarks/gpu_check.py`` runs this file on a GPU machine; tests/test_train_gpu_paths.py runs the same code paths
(autocast, the gradient scaler, host-kept data) on the CPU in every ``make test``.
"""
import math

import pytest
import torch

import vaelib
from vaelib import losses
from vaelib.data import load_dataset
from vaelib.train import Trainer

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (benchmarks/gpu_check.py)")


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits"), load_dataset("digits", split="test")


def small_vae(seed=0):
    torch.manual_seed(seed)
    return vaelib.VAE(64, hidden=(32,), latent_dim=4)


def test_pick_device_is_the_gpu():
    assert vaelib.pick_device().type == "cuda"


def test_float32_on_the_gpu_learns_like_the_cpu(digits):
    """Different random streams on the two devices, so not equal: within 1 nat after 8 epochs."""
    trn, tst = digits
    cpu = vaelib.fit(small_vae(), trn, test=tst, epochs=8, device="cpu", verbose=False)
    model = small_vae()
    gpu = vaelib.fit(model, trn, test=tst, epochs=8, device="cuda", amp=False, verbose=False)
    assert next(model.parameters()).is_cuda
    assert abs(gpu.test_loss[-1] - cpu.test_loss[-1]) < 1.0


@pytest.mark.parametrize("amp", [None, torch.float16, torch.bfloat16], ids=["automatic", "float16", "bfloat16"])
def test_mixed_precision_on_the_gpu(digits, amp):
    trn, tst = digits
    if amp is torch.bfloat16 and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bfloat16")
    ref = vaelib.fit(small_vae(), trn, test=tst, epochs=8, device="cuda", amp=False, verbose=False)
    trainer = Trainer(small_vae(), device="cuda", amp=amp, verbose=False)
    assert trainer.amp_dtype in (torch.bfloat16, torch.float16)
    assert (trainer.scaler is not None) == (trainer.amp_dtype == torch.float16)
    h = trainer.fit(trn, epochs=8, test=tst)
    assert all(math.isfinite(v) for v in h.train_loss + h.test_loss)
    assert abs(h.test_loss[-1] - ref.test_loss[-1]) < 1.0


def test_data_kept_on_the_host_are_copied_batch_by_batch(digits):
    trn, tst = digits
    trainer = Trainer(small_vae(), device="cuda", keep_data_on_host=True, verbose=False)
    x = trainer.prepare(trn)
    assert x.device.type == "cpu"
    xb = trainer._to_device(x[:8])
    assert xb.is_cuda and torch.equal(xb.cpu(), x[:8])
    h = trainer.fit(trn, epochs=8, test=tst)
    ref = vaelib.fit(small_vae(), trn, test=tst, epochs=8, device="cuda", verbose=False)
    assert abs(h.test_loss[-1] - ref.test_loss[-1]) < 1.0


def test_iwae_on_the_gpu_agrees_with_the_cpu(digits):
    model = small_vae()
    vaelib.fit(model, digits[0], epochs=3, device="cpu", verbose=False)
    x = digits[1][0][:200]
    torch.manual_seed(0)
    cpu = losses.iwae_log_likelihood(model.cpu(), x, k=500)
    torch.manual_seed(0)
    gpu = losses.iwae_log_likelihood(model.cuda(), x.cuda(), k=500).cpu()
    se = (cpu.std() / math.sqrt(len(x))).item()
    assert abs(cpu.mean().item() - gpu.mean().item()) < 3 * se + 0.05


def test_a_gpu_model_checkpoint_loads_on_the_cpu(tmp_path, digits):
    model = small_vae()
    vaelib.fit(model, digits[0], epochs=1, device="cuda", checkpoint=tmp_path / "m.pt", verbose=False)
    loaded, _, history = vaelib.load_checkpoint(tmp_path / "m.pt")
    assert next(loaded.parameters()).device.type == "cpu" and len(history.train_loss) == 1
    for (_, a), (_, b) in zip(loaded.state_dict().items(), model.state_dict().items()):
        assert torch.equal(a, b.cpu())
