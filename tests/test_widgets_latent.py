"""The latent explorer: the decoder it embeds in the page, and the maths its JavaScript runs.

The widget's JavaScript decodes z in the browser from base64 weights. Here (1) the exported weights round-trip exactly
to the torch parameters, (2) a NumPy transcription of the JavaScript's decode path reproduces
``torch.sigmoid(model.decode(z))``, and (3) where Node.js is installed, the JavaScript functions themselves are run on
the same state and compared with torch. The browser tests check that the page renders and responds.
"""
from __future__ import annotations

import base64

import numpy as np
import pytest
import torch

import vaelib
from vaelib.widgets import JS_DIR, LatentExplorer

from widget_js import check_conventions, needs_node, run_node


def _model(hidden=(32,), seed=0, cls=vaelib.VAE, **kwargs):
    torch.manual_seed(seed)
    model = cls(784, hidden=hidden, latent_dim=2, **kwargs)
    with torch.no_grad():   # larger weights than the default init, so that ReLUs and the sigmoid's tails are exercised
        for p in model.decoder.parameters():
            p.mul_(3.0)
    return model.eval()


def _js_decode_numpy(state: dict, z: np.ndarray) -> np.ndarray:
    """A line-by-line NumPy transcription of latent.js: floatsFromBase64, parseLayers and decode, for a batch of z."""
    little = {"float32": "<f4", "float16": "<f2"}[state["dtype"]]
    h = np.asarray(z, dtype=np.float64)
    n = len(state["layers"])
    for k, layer in enumerate(state["layers"]):
        W = np.frombuffer(base64.b64decode(layer["weight"]), dtype=little).astype(np.float32)
        b = np.frombuffer(base64.b64decode(layer["bias"]), dtype=little).astype(np.float32)
        W = W.reshape(layer["rows"], layer["cols"])
        h = h @ W.T.astype(np.float64) + b
        if k < n - 1:
            h = np.maximum(h, 0.0)
    if state["output"] == "identity":
        return np.clip(h, 0.0, 1.0)
    return 1.0 / (1.0 + np.exp(-h))


def _torch_means(model, z: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        out = model.decode(torch.as_tensor(z, dtype=torch.float32))
        out = torch.sigmoid(out) if model.likelihood == "bernoulli" else out.clamp(0, 1)
    return out.double().numpy()


Z = np.random.default_rng(1).normal(scale=2.0, size=(16, 2)).astype(np.float32)


@pytest.mark.parametrize("hidden", [(32,), (24, 16)])
def test_float32_weights_round_trip_exactly(hidden):
    model = _model(hidden)
    w = LatentExplorer(model, dtype="float32")
    linears = [m for m in model.decoder if isinstance(m, torch.nn.Linear)]
    assert len(w.layers) == len(linears) == len(hidden) + 1
    for layer, lin in zip(w.layers, linears):
        assert (layer["rows"], layer["cols"]) == tuple(lin.weight.shape)
        weight = np.frombuffer(base64.b64decode(layer["weight"]), dtype="<f4").reshape(layer["rows"], layer["cols"])
        bias = np.frombuffer(base64.b64decode(layer["bias"]), dtype="<f4")
        np.testing.assert_array_equal(weight, lin.weight.detach().numpy())
        np.testing.assert_array_equal(bias, lin.bias.detach().numpy())


def test_float16_weights_are_the_half_precision_rounding():
    model = _model()
    w = LatentExplorer(model)   # float16 is the default
    assert w.dtype == "float16"
    for layer, lin in zip(w.layers, [m for m in model.decoder if isinstance(m, torch.nn.Linear)]):
        got = LatentExplorer.decode_floats(layer["weight"], "float16").reshape(layer["rows"], layer["cols"])
        np.testing.assert_array_equal(got, lin.weight.detach().half().float().numpy())
        # and the rounding is a real approximation: relative error within float16's 2^-11
        ref = lin.weight.detach().numpy()
        assert np.all(np.abs(got - ref) <= np.abs(ref) * 2.0 ** -11 + 2.0 ** -24)


@pytest.mark.parametrize("hidden", [(32,), (24, 16)])
def test_numpy_transcription_of_js_decode_matches_torch(hidden):
    model = _model(hidden)
    state = LatentExplorer(model, dtype="float32").get_state()
    got = _js_decode_numpy(state, Z)
    want = _torch_means(model, Z)
    assert got.shape == (len(Z), 784)
    np.testing.assert_allclose(got, want, atol=2e-6, rtol=0)
    assert 0.05 < want.std()   # the images vary: a decoder that ignored z or saturated would not pass trivially


def test_float16_decode_matches_a_model_with_rounded_weights():
    model = _model()
    state = LatentExplorer(model).get_state()
    rounded = _model()
    with torch.no_grad():
        for p in rounded.decoder.parameters():
            p.copy_(p.half().float())
    np.testing.assert_allclose(_js_decode_numpy(state, Z), _torch_means(rounded, Z), atol=2e-6, rtol=0)
    # and float16 stays close to the full-precision decoder
    assert np.abs(_js_decode_numpy(state, Z) - _torch_means(model, Z)).max() < 0.02


def test_gaussian_decoder_and_autoencoder():
    gauss = _model(likelihood="gaussian")
    state = LatentExplorer(gauss, dtype="float32").get_state()
    assert state["output"] == "identity"
    np.testing.assert_allclose(_js_decode_numpy(state, Z), _torch_means(gauss, Z), atol=2e-6, rtol=0)
    ae = _model(cls=vaelib.Autoencoder)
    state = LatentExplorer(ae, dtype="float32").get_state()
    assert state["output"] == "sigmoid"
    np.testing.assert_allclose(_js_decode_numpy(state, Z), _torch_means(ae, Z), atol=2e-6, rtol=0)


def test_codes_are_subsampled_with_their_labels():
    model = _model()
    codes = torch.randn(3000, 2)
    labels = torch.randint(0, 10, (3000,))
    w = LatentExplorer(model, codes, labels, max_points=500, label_names=[f"digit {k}" for k in range(10)])
    pts = LatentExplorer.decode_floats(w.points).reshape(-1, 2)
    assert pts.shape == (500, 2) and len(w.labels) == 500
    lookup = {tuple(c): int(l) for c, l in zip(codes.numpy().tolist(), labels.tolist())}
    for p, l in zip(pts.tolist(), w.labels):   # each kept code still carries its own label
        assert lookup[tuple(p)] == l
    assert len(set(map(tuple, pts.tolist()))) == 500   # no duplicates
    assert w.extent >= 3.0 and w.label_names[3] == "digit 3"
    wide = LatentExplorer(model, codes * 5, labels)
    assert wide.extent > 5   # the plane grows to hold the codes
    assert wide.extent == np.ceil(2 * np.quantile(np.abs(LatentExplorer.decode_floats(wide.points)), 0.99)) / 2


def test_embedded_size_halves_with_float16():
    model = _model(hidden=(64,))
    n_params = sum(p.numel() for p in model.decoder.parameters())
    full, half = LatentExplorer(model, dtype="float32"), LatentExplorer(model, dtype="float16")
    assert full.embedded_bytes() == pytest.approx(4 * n_params * 4 / 3, rel=0.01)   # base64: 4 chars per 3 bytes
    assert half.embedded_bytes() == pytest.approx(full.embedded_bytes() / 2, rel=0.01)


@pytest.mark.parametrize("bad, match", [
    (lambda: LatentExplorer(vaelib.VAE(784, hidden=(8,), latent_dim=3)), "latent_dim=2"),
    (lambda: LatentExplorer(vaelib.ConvVAE(latent_dim=2)), "MLP decoder"),
    (lambda: LatentExplorer(_model(), dtype="float64"), "dtype"),
    (lambda: LatentExplorer(_model(), torch.randn(10, 3)), r"shape \(N, 2\)"),
    (lambda: LatentExplorer(_model(), torch.randn(10, 2), torch.zeros(9)), "labels must have shape"),
    (lambda: LatentExplorer(_model(), extent=-1.0), "extent must be positive"),
])
def test_bad_input_raises_a_clear_value_error(bad, match):
    with pytest.raises(ValueError, match=match):
        bad()


def test_js_follows_the_widget_conventions():
    own = check_conventions("latent", LatentExplorer)
    assert "imageCanvas(" in own and "image-rendering:pixelated" in (JS_DIR / "common.js").read_text()


@needs_node
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_the_javascript_itself_decodes_like_torch(tmp_path, dtype):
    """Run latent.js's own parseLayers/decode under Node on the widget's state and compare with torch."""
    model = _model(hidden=(24, 16))
    state = LatentExplorer(model, dtype=dtype).get_state()
    payload = {"layers": state["layers"], "dtype": dtype, "output": state["output"], "z": Z.tolist()}
    decoded = run_node(tmp_path, "latent", "const net = m.parseLayers(s.layers, s.dtype);\n"
                       "console.log(JSON.stringify(s.z.map((z) => Array.from(m.decode(net, z, s.output)))));\n", payload)
    got = np.array(decoded)
    if dtype == "float16":
        with torch.no_grad():
            for p in model.decoder.parameters():
                p.copy_(p.half().float())
    np.testing.assert_allclose(got, _torch_means(model, Z), atol=2e-6, rtol=0)
    np.testing.assert_allclose(got, _js_decode_numpy(state, Z), atol=1e-9, rtol=0)
