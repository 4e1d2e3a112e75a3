"""The training explorer: a VAE trained by Adam in the reader's browser (vaelib/js/train.js).

(1) Under Node.js, the JavaScript's own loss and gradients, for weights built here, a binary batch and fixed noise
eps, agree with ``vaelib.elbo`` and PyTorch's autograd (float64 to 1e-9, float32 autograd to float32 precision), its
Adam step with ``torch.optim.Adam``, its encoder and decoder with ``model.encode`` and ``model.decode``, and its
separation score with NumPy; a short training run under Node lowers the loss. (2) In Python: the images and labels
embedded in the page, the 2 MB limit, and clear errors for bad input. The browser test (tests/browser/test_train.py)
presses Train on the built page.
"""
from __future__ import annotations

import base64

import numpy as np
import pytest
import torch

import vaelib
from vaelib.data import STATIC_THRESHOLD
from vaelib.widgets import TrainingExplorer

from widget_js import check_conventions, needs_node, run_node

TORCH_NAMES = ["body.0.weight", "body.0.bias", "to_mu.weight", "to_mu.bias", "to_logvar.weight", "to_logvar.bias",
               "decoder.0.weight", "decoder.0.bias", "decoder.2.weight", "decoder.2.bias"]


def _model(d=64, hidden=16, seed=0, scale=2.0):
    """A VAE with larger weights than the default init (so ReLUs switch and logits reach the sigmoid's tails)."""
    torch.manual_seed(seed)
    model = vaelib.VAE(d, hidden=(hidden,), latent_dim=2)
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(scale)
    return model


def _batch(n, d, seed=1):
    g = np.random.default_rng(seed)
    x = (g.random((n, d)) < g.uniform(0.1, 0.5, size=(n, 1))).astype(np.float32)
    eps = g.standard_normal((n, 2)).astype(np.float32)
    return x, eps


def _torch_loss_and_grads(model, x, eps, beta, dtype=torch.float64):
    """-vaelib.elbo(model, x, beta).mean() with the sample z = mu + exp(logvar / 2) * eps, and its autograd gradients."""
    model = model.to(dtype)
    model.zero_grad()
    e = torch.as_tensor(eps, dtype=dtype)
    model.reparameterize = lambda mu, logvar: mu + torch.exp(0.5 * logvar) * e   # fixed noise instead of randn_like
    xt = torch.as_tensor(x, dtype=dtype)
    loss = -vaelib.elbo(model, xt, beta=beta).mean()
    loss.backward()
    recon, kl = (-t.mean() if i == 0 else t.mean() for i, t in enumerate(vaelib.elbo_terms(model, xt)))
    del model.reparameterize
    grads = {name: p.grad.detach().double().numpy().copy() for name, p in model.named_parameters()}
    return float(loss.detach()), float(recon.detach()), float(kl.detach()), grads


def _params(model):
    return {name: p.detach().float().reshape(-1).tolist() for name, p in model.named_parameters()}


JS_LOSS = """
const net = m.createNet(s.D, s.H, 2);
m.setTorchParams(net, s.params);
const data = m.imagesFromRows(s.x);
const idx = s.x.map((_, i) => i);
const grads = m.zerosLike(net);
const out = m.lossAndGrad(net, data, idx, s.eps.flat(), s.beta, grads);
console.log(JSON.stringify({ out, grads: m.toTorchLayout(net, grads), params: m.toTorchLayout(net, net.p) }));
"""


@needs_node
@pytest.mark.parametrize("d, hidden, beta", [(64, 16, 1.0), (64, 16, 7.5), (784, 32, 0.3)])
def test_js_loss_and_gradients_match_autograd(tmp_path, d, hidden, beta):
    model = _model(d, hidden)
    x, eps = _batch(12, d)
    payload = dict(D=d, H=hidden, beta=beta, params=_params(model), x=x.astype(int).tolist(), eps=eps.tolist())
    js = run_node(tmp_path, "train", JS_LOSS, payload)
    for name in TORCH_NAMES:   # the weights went in and came out unchanged (W1T is stored transposed)
        np.testing.assert_array_equal(np.float32(js["params"][name]), model.state_dict()[name].reshape(-1).numpy())
    loss64, recon64, kl64, g64 = _torch_loss_and_grads(_model(d, hidden), x, eps, beta, torch.float64)
    loss32, recon32, kl32, g32 = _torch_loss_and_grads(_model(d, hidden), x, eps, beta, torch.float32)
    out = js["out"]
    assert out["loss"] == pytest.approx(loss64, rel=1e-12)
    assert out["recon"] == pytest.approx(recon64, rel=1e-12) and out["kl"] == pytest.approx(kl64, rel=1e-12)
    assert out["negElbo"] == pytest.approx(recon64 + kl64, rel=1e-12)
    assert out["loss"] == pytest.approx(loss32, rel=2e-6)
    assert 0.1 < kl64 and 20 < recon64   # a batch that exercises both terms
    for name in TORCH_NAMES:
        got, want64, want32 = np.array(js["grads"][name]), g64[name].reshape(-1), g32[name].reshape(-1)
        scale = np.abs(want64).max()
        assert scale > 0, name
        np.testing.assert_allclose(got, want64, rtol=1e-9, atol=1e-12 * scale, err_msg=name)
        np.testing.assert_allclose(got, want32, rtol=1e-3, atol=2e-6 * scale, err_msg=name)
