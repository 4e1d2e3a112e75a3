"""GPU check: what only a CUDA GPU can show, in one script (a few minutes on one modern GPU; the budget is 8).

    python benchmarks/gpu_check.py [--root DIR]     # on a machine with a CUDA GPU and the MNIST files
    python benchmarks/gpu_check.py --smoke          # the same steps, tiny, on the CPU (the test suite runs this)

1. the tests that need CUDA: tests/test_cuda.py (and the CPU twins of those paths, tests/test_train_gpu_paths.py);
2. chapter 5's VAE (784-400-20, batch 128, Adam 1e-3, dynamically binarised MNIST) trained with ``vaelib.fit``
   for the same number of epochs on the CPU, on the GPU in float32 and on the GPU in mixed precision; the GPU runs'
   test negative ELBO must agree with the CPU run's within 1 nat;
3. the seconds per epoch of ``vaelib.fit`` on the GPU against the canonical DataLoader loop of the PyTorch VAE
   example on the same GPU (benchmarks/bench_fit.py's loop, batches copied from pinned memory), epochs alternating;
4. chapter 7's importance-weighted estimate of log p(x), k = 5000, on the whole test set (binarised once with
   vaelib's test seed), with its time.

Every figure is printed; the last line says whether every check passed (exit status 1 if not).
"""
from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import vaelib  # noqa: E402
from vaelib.data import ImageData, data_root  # noqa: E402
from vaelib.train import TEST_BINARIZE_SEED  # noqa: E402

from bench_fit import Canonical, ExampleVAE, as_vaelib  # noqa: E402

FAILURES: list[str] = []


def check(ok: bool, what: str) -> None:
    print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        FAILURES.append(what)


def run_cuda_tests() -> None:
    print("1. tests that need CUDA")
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "tests/test_cuda.py", "tests/test_train_gpu_paths.py"],
                          cwd=HERE.parent, capture_output=True, text=True)
    summary = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
    print(f"  pytest: {summary} ({time.perf_counter() - t:.0f} s)")
    if done.returncode != 0:
        print(done.stdout[-4000:], done.stderr[-2000:])
    check(done.returncode == 0, "tests/test_cuda.py and tests/test_train_gpu_paths.py pass")


def chapter5_vae(init: dict) -> vaelib.VAE:
    model = vaelib.VAE(784, hidden=(400,), latent_dim=20)
    model.load_state_dict(init)
    return model


def train_three_ways(train, test, init, epochs: int, device: torch.device) -> vaelib.VAE:
    print(f"2. chapter 5's VAE, {epochs} epochs of {len(train[0]):,} images, test set {len(test[0]):,}")
    runs = {}
    gpu = "GPU" if device.type == "cuda" else f"{device.type} (smoke)"
    for name, dev, amp in (("CPU float32", "cpu", False), (f"{gpu} float32", device, False),
                           (f"{gpu} mixed precision", device, None)):
        model = chapter5_vae(init)
        trainer = vaelib.Trainer(model, device=dev, amp=amp, seed=0, verbose=False)
        t = time.perf_counter()
        h = trainer.fit(train, epochs=epochs, test=test)
        wall = time.perf_counter() - t
        dtype = str(trainer.amp_dtype).replace("torch.", "") if trainer.amp_dtype else "float32"
        print(f"  {name:20s} ({dtype:8s}) test -ELBO {h.test_loss[-1]:8.3f} nats   "
              f"{statistics.median(h.epoch_seconds):6.2f} s/epoch (median)   {wall:6.1f} s in all")
        runs[name] = (h.test_loss[-1], model)
    cpu = runs["CPU float32"][0]
    for name in (f"{gpu} float32", f"{gpu} mixed precision"):
        diff = runs[name][0] - cpu
        check(abs(diff) <= 1.0, f"{name} test -ELBO within 1 nat of the CPU run ({diff:+.3f} nats)")
    return runs[f"{gpu} float32"][1]


def time_against_canonical(root: str, train, init, epochs: int, device: torch.device, limit) -> None:
    print(f"3. seconds per epoch on {device}: vaelib.fit against the canonical DataLoader loop ({epochs} epochs each, "
          f"alternating)")
    canonical = Canonical(root, {k: v.clone() for k, v in init.items()}, device=device, limit=limit)
    fp32 = vaelib.Trainer(as_vaelib(canonical.model.state_dict()), device=device, amp=False, verbose=False)
    mixed = vaelib.Trainer(as_vaelib(canonical.model.state_dict()), device=device, verbose=False)
    sub = ImageData(train[0][:limit], train[1][:limit])   # grey values, as the canonical loop's ToTensor gives
    can_s, fit_s, mixed_s = [], [], []
    for _ in range(epochs):
        can_s.append(canonical.epoch()[0])
        fit_s.append(fp32.fit(sub, epochs=1).epoch_seconds[-1])
        mixed_s.append(mixed.fit(sub, epochs=1).epoch_seconds[-1])
    can, fit, mix = (statistics.median(v) for v in (can_s, fit_s, mixed_s))
    print(f"  canonical loop (float32)   {can:6.3f} s/epoch")
    print(f"  vaelib.fit (float32)       {fit:6.3f} s/epoch   {can / fit:5.2f}x the canonical loop")
    print(f"  vaelib.fit (mixed)         {mix:6.3f} s/epoch   {can / mix:5.2f}x the canonical loop")
    if device.type == "cuda":   # on the CPU (--smoke) a few tiny batches time nothing worth checking
        check(fit < can, f"vaelib.fit is faster than the canonical loop on {device.type}")


def iwae_whole_test_set(model, test, k: int, device: torch.device) -> None:
    x = torch.bernoulli(test[0], generator=torch.Generator().manual_seed(TEST_BINARIZE_SEED)).to(device)
    print(f"4. importance-weighted log-likelihood, k = {k}, {len(x):,} test images")
    model = model.to(device).eval()
    torch.manual_seed(0)
    with torch.no_grad():
        elbo = vaelib.elbo(model, x, samples=1).double()
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        values = vaelib.iwae_log_likelihood(model, x, k=k, batch_size=250_000 if device.type == "cuda" else 20_000)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t
    values = values.double().cpu()
    se = values.std().item() / math.sqrt(len(values))
    print(f"  -ELBO (1 sample) {-elbo.mean().item():8.3f} nats;  -L_{k} {-values.mean().item():8.3f} +/- {se:.3f} nats "
          f"(standard error);  {seconds:.1f} s")
    check(bool(torch.isfinite(values).all()) and values.mean().item() >= elbo.mean().item() - 3 * se,
          f"L_{k} finite and not below the ELBO")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default=None, help="data folder in torchvision layout (default: $VAELIB_DATA)")
    parser.add_argument("--epochs", type=int, default=10, help="training epochs of step 2 (default 10)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU: checks that the script runs")
    args = parser.parse_args(argv)
    root = str(data_root(args.root))
    os.environ["VAELIB_DATA"] = root
    start = time.perf_counter()

    if args.smoke:
        device, epochs, k, limit, n_test = torch.device("cpu"), 1, 20, 1000, 200
    elif not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU here (torch.cuda.is_available() is False); run it on a GPU machine, or use "
              "--smoke to try the script on the CPU")
        return 2
    else:
        device, epochs, k, limit, n_test = torch.device("cuda"), args.epochs, 5000, None, None
        print(f"GPU: {torch.cuda.get_device_name()}; torch {torch.__version__}, CUDA {torch.version.cuda}; "
              f"bfloat16 {'native' if torch.cuda.is_bf16_supported() else 'no'}")

    train = vaelib.load_dataset("mnist", "train", binarize="dynamic")
    test = vaelib.load_dataset("mnist", "test")
    if args.smoke:
        train = ImageData(train[0][:limit], train[1][:limit], "dynamic")
        test = ImageData(test[0][:n_test], test[1][:n_test])
    torch.manual_seed(0)
    init = as_vaelib(ExampleVAE().state_dict()).state_dict()   # the same initial weights for every run

    if not args.smoke:
        run_cuda_tests()
    gpu_model = train_three_ways(train, test, init, epochs, device)
    time_against_canonical(root, train, as_example(init), 3 if not args.smoke else 1, device, limit)
    iwae_whole_test_set(gpu_model, test, k, device)

    print(f"\ngpu_check: {time.perf_counter() - start:.0f} s in all; "
          + ("every check passed" if not FAILURES else f"{len(FAILURES)} check(s) FAILED: " + "; ".join(FAILURES)))
    return 1 if FAILURES else 0


def as_example(vaelib_state: dict) -> dict:
    """The example model's parameter names for a vaelib.VAE state (inverse of bench_fit.as_vaelib)."""
    from bench_fit import NAME_MAP

    back = {v: k for k, v in NAME_MAP.items()}
    return {f"{back[name.rsplit('.', 1)[0]]}.{name.rsplit('.', 1)[1]}": t.clone() for name, t in vaelib_state.items()}


if __name__ == "__main__":
    sys.exit(main())
