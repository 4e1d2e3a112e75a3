"""Interactive explorers for the book, built on anywidget.

Each widget's logic is JavaScript (``vaelib/js/NAME.js``) and all the data it needs is synced state, so the same
widget works live in Jupyter and Colab and still responds on the book's static HTML pages, where no kernel runs.
Conventions every widget follows (the browser tests rely on them): the root element carries ``data-vaelib-widget``,
the widget draws into a ``<canvas>`` or ``<svg>``, and it has at least one ``<input type="range">`` with a label.

What the widgets' JavaScript has in common (the element factory, the root and side-panel layout, labelled slider rows,
canvases, axes, greyscale images, the latent plane, MLP decoders embedded as base64 weights, a point moved on a latent
plane) lives once, in ``js/common.js``. An anywidget ``_esm`` is a single
self-contained module that cannot import a file beside it, so :func:`_js` puts ``common.js`` in front of each widget's
own file.
"""
from __future__ import annotations

from pathlib import Path

import anywidget
import traitlets

JS_DIR = Path(__file__).parent / "js"


def _js(name: str) -> str:
    """The ES module of widget NAME: ``vaelib/js/common.js`` followed by ``vaelib/js/NAME.js``.

    The result exports ``render({model, el})`` as its default, and every function of both files.
    """
    common = (JS_DIR / "common.js").read_text(encoding="utf-8")
    return common + "\n// ---- " + f"{name}.js\n" + (JS_DIR / f"{name}.js").read_text(encoding="utf-8")


class LatentExplorer(anywidget.AnyWidget):
    """Move a point z = (z1, z2) in a 2-D latent plane and see the decoded image, computed in the browser.

    ``LatentExplorer(model, codes=None, labels=None, ...)`` takes a trained MLP model with a 2-D latent
    (``vaelib.VAE`` or ``vaelib.Autoencoder``) and embeds its decoder in the widget's state: one entry of ``layers``
    per ``nn.Linear`` (``rows`` x ``cols``, torch layout, row-major), its weight and bias as base64 little-endian
    floats (``dtype`` "float16" halves the page weight; "float32" is exact). The JavaScript (``js/latent.js``) runs the
    forward pass itself: ReLU between the layers, then a sigmoid (Bernoulli logits -> pixel means) or, for a Gaussian
    decoder, the mean clipped to [0, 1]. ``codes`` (N, 2) and ``labels`` (N,) (e.g. the test set's latent means) are
    drawn behind, subsampled to ``max_points``.
    """

    _esm = _js("latent")
    layers = traitlets.List(traitlets.Dict()).tag(sync=True)
    dtype = traitlets.Unicode("float16").tag(sync=True)
    output = traitlets.Unicode("sigmoid").tag(sync=True)
    image_shape = traitlets.List(traitlets.Int(), default_value=[28, 28]).tag(sync=True)
    z1 = traitlets.Float(0.0).tag(sync=True)
    z2 = traitlets.Float(0.0).tag(sync=True)
    extent = traitlets.Float(3.0).tag(sync=True)
    points = traitlets.Unicode("").tag(sync=True)
    labels = traitlets.List(traitlets.Int()).tag(sync=True)
    label_names = traitlets.List(traitlets.Unicode()).tag(sync=True)

    def __init__(self, model, codes=None, labels=None, *, label_names=None, dtype: str = "float16",
                 max_points: int = 1000, extent: float | None = None, z=(0.0, 0.0), seed: int = 0, **kwargs):
        if getattr(model, "latent_dim", None) != 2:
            raise ValueError(f"LatentExplorer needs a model with latent_dim=2; got {getattr(model, 'latent_dim', None)}")
        state = _decoder_state(model, dtype, "LatentExplorer", "vaelib.VAE or vaelib.Autoencoder")
        extent = _codes_state(state, codes, labels, label_names, max_points, seed, extent)
        super().__init__(**state, extent=extent, z1=float(z[0]), z2=float(z[1]), **kwargs)

    @staticmethod
    def encode_floats(values, dtype: str = "float32") -> str:
        """A tensor or array as base64 of its little-endian ``dtype`` bytes, flattened in row-major order."""
        import base64

        import numpy as np
        import torch

        if isinstance(values, torch.Tensor):
            values = values.detach().cpu().numpy()
        little = {"float32": "<f4", "float16": "<f2"}[dtype]
        return base64.b64encode(np.ascontiguousarray(values, dtype=little).tobytes()).decode("ascii")

    @staticmethod
    def decode_floats(text: str, dtype: str = "float32"):
        """The inverse of ``encode_floats``: a flat float32 NumPy array."""
        import base64

        import numpy as np

        little = {"float32": "<f4", "float16": "<f2"}[dtype]
        return np.frombuffer(base64.b64decode(text), dtype=little).astype(np.float32)

    def embedded_bytes(self) -> int:
        """The size in bytes of the base64 text this widget embeds in the page (weights, biases and codes)."""
        return sum(len(l["weight"]) + len(l["bias"]) for l in self.layers) + len(self.points) + 4 * len(self.labels)


class CVAEExplorer(LatentExplorer):
    """A conditional VAE's decoder p(x | z, y) in the browser: pick the class y, move z in the 2-D latent plane.

    ``CVAEExplorer(model, codes=None, labels=None, *, label_names=None, digit=0, ...)`` takes a trained
    ``vaelib.CVAE`` with ``latent_dim=2`` whose ``decode(z, y)`` is ``model.decoder`` (Linear layers with ReLU between
    them) applied to ``[z, one_hot(y)]``; this is checked on probe points, so a model that feeds the class in any
    other way is refused. The decoder is embedded as :class:`LatentExplorer` embeds one (``layers``, ``dtype``,
    ``output``); the JavaScript (``js/cvae.js``) feeds it ``[z1, z2, one_hot(digit)]``, so the first layer has
    ``2 + n_classes`` columns. Drawn: the plane with the codes of the chosen class (``codes`` (N, 2) and ``labels``
    (N,), e.g. the test set's posterior means mu(x, y), subsampled to ``max_points``), the image decoded at
    (z, digit), and a strip of every class decoded at the same z (click one to pick it). ``digit`` is the class
    picked (a slider from 0 to n_classes - 1); ``label_names`` name the classes. It has the latent explorer's state
    (its traits, ``encode_floats``, ``embedded_bytes``) and two more traits, ``n_classes`` and ``digit``.
    """

    _esm = _js("cvae")
    n_classes = traitlets.Int(10).tag(sync=True)
    digit = traitlets.Int(0).tag(sync=True)

    def __init__(self, model, codes=None, labels=None, *, label_names=None, digit: int = 0, dtype: str = "float16",
                 max_points: int = 1000, extent: float | None = None, z=(0.0, 0.0), seed: int = 0, **kwargs):
        import torch
        import torch.nn.functional as F

        n_classes = getattr(model, "n_classes", None)
        if getattr(model, "latent_dim", None) != 2 or not isinstance(n_classes, int) or n_classes < 1:
            raise ValueError("CVAEExplorer needs a conditional model with latent_dim=2 and n_classes (vaelib.CVAE); got "
                             f"latent_dim={getattr(model, 'latent_dim', None)}, n_classes={n_classes}")
        state = _decoder_state(model, dtype, "CVAEExplorer", "vaelib.CVAE")
        if state["layers"][0]["cols"] != 2 + n_classes:
            raise ValueError(f"CVAEExplorer needs a decoder whose first layer reads [z, one_hot(y)], 2 + {n_classes} "
                             f"inputs; it reads {state['layers'][0]['cols']}")
        with torch.no_grad():   # the layout the JavaScript assumes: decode(z, y) = decoder([z, one_hot(y)])
            device = next(model.decoder.parameters()).device
            y = torch.arange(n_classes, device=device).repeat(3)
            zp = torch.randn(len(y), 2, generator=torch.Generator().manual_seed(0)).mul(2).to(device)
            want = model.decode(zp, y).reshape(len(y), -1)
            got = model.decoder(torch.cat([zp, F.one_hot(y, n_classes).to(zp.dtype)], 1))
        if want.shape != got.shape or not torch.allclose(want, got, atol=1e-5, rtol=1e-5):
            raise ValueError("CVAEExplorer decodes [z, one_hot(y)] with model.decoder, but model.decode(z, y) gives "
                             "other values: the model feeds the class to its decoder in another way")
        if isinstance(digit, bool) or int(digit) != digit or not 0 <= int(digit) < n_classes:
            raise ValueError(f"digit must be an integer from 0 to {n_classes - 1}; got {digit!r}")
        extent = _codes_state(state, codes, labels, label_names, max_points, seed, extent)
        # Not LatentExplorer.__init__, which takes models without classes: the state is complete here.
        anywidget.AnyWidget.__init__(self, **state, n_classes=n_classes, digit=int(digit), extent=extent,
                                     z1=float(z[0]), z2=float(z[1]), **kwargs)


def _decoder_state(model, dtype: str, who: str, models: str) -> dict:
    """The synced state of an MLP decoder embedded in a widget (``LatentExplorer``, ``CVAEExplorer``).

    ``model.decoder`` must be an ``nn.Sequential`` of Linear layers with ReLU between them; returns ``layers`` (one
    dict per Linear: ``rows`` x ``cols`` in torch layout, weight and bias as base64 little-endian ``dtype``), ``dtype``,
    ``output`` ("sigmoid" for Bernoulli logits, "identity" for a Gaussian mean) and ``image_shape`` [H, W].
    ``who`` and ``models`` name the widget and the models it takes in the error messages.
    """
    import torch

    if dtype not in ("float16", "float32"):
        raise ValueError(f"dtype must be 'float16' or 'float32'; got {dtype!r}")
    decoder = getattr(model, "decoder", None)
    if not isinstance(decoder, torch.nn.Sequential):
        raise ValueError(f"{who} needs an MLP decoder ({models}: model.decoder an nn.Sequential of Linear and ReLU "
                         f"layers); got {type(model).__name__}")
    linears = [m for m in decoder if isinstance(m, torch.nn.Linear)]
    expected = [torch.nn.Linear if i % 2 == 0 else torch.nn.ReLU for i in range(2 * len(linears) - 1)]
    if [type(m) for m in decoder] != expected:
        raise ValueError(f"{who} needs a decoder of Linear layers with ReLU between them; got "
                         + ", ".join(type(m).__name__ for m in decoder))
    likelihood = getattr(model, "likelihood", "bernoulli")
    output = {"bernoulli": "sigmoid", "gaussian": "identity"}.get(likelihood)
    if output is None:
        raise ValueError(f"unknown likelihood {likelihood!r}; expected 'bernoulli' or 'gaussian'")
    encode = LatentExplorer.encode_floats
    layers = [dict(rows=int(m.out_features), cols=int(m.in_features),
                   weight=encode(m.weight, dtype), bias=encode(m.bias, dtype)) for m in linears]
    return dict(layers=layers, dtype=dtype, output=output, image_shape=[int(s) for s in model.image_shape[-2:]])


def _codes_state(state: dict, codes, labels, label_names, max_points: int, seed: int, extent) -> float:
    """Add the background codes (N, 2) and their labels (N,), subsampled to ``max_points`` (NumPy, ``seed``), and the
    label names to a latent widget's ``state``; returns the plane's extent: ``extent``, else a square that holds 99%
    of the codes and the prior's radius-3 circle (3 without codes)."""
    import numpy as np
    import torch

    if codes is not None:
        codes = np.asarray(codes.detach().cpu() if isinstance(codes, torch.Tensor) else codes, dtype=np.float32)
        if codes.ndim != 2 or codes.shape[1] != 2:
            raise ValueError(f"codes must have shape (N, 2); got {codes.shape}")
        lab = np.zeros(len(codes), dtype=np.int64) if labels is None else np.asarray(
            labels.detach().cpu() if isinstance(labels, torch.Tensor) else labels).astype(np.int64)
        if lab.shape != (len(codes),):
            raise ValueError(f"labels must have shape ({len(codes)},); got {lab.shape}")
        keep = np.random.default_rng(seed).permutation(len(codes))[:max_points]
        codes, lab = codes[keep], lab[keep]
        state.update(points=LatentExplorer.encode_floats(codes, "float32"), labels=lab.tolist())
        if extent is None:
            extent = float(max(3.0, np.ceil(2 * np.quantile(np.abs(codes), 0.99)) / 2))
    if label_names is not None:
        state["label_names"] = [str(s) for s in label_names]
    extent = 3.0 if extent is None else float(extent)
    if not extent > 0:
        raise ValueError(f"extent must be positive; got {extent}")
    return extent


def _check_positive(name: str, value) -> float:
    value = float(value)
    if not 0 < value < float("inf"):
        raise ValueError(f"{name} must be a positive finite number; got {value}")
    return value


class BayesExplorer(anywidget.AnyWidget):
    """Bayes' rule for two classes with Gaussian likelihoods: move the prior and the likelihoods, see the posterior.

    ``p(y=1) = prior``, ``p(x|y=k) = N(x; mu_k, sigma_k^2)``; the JavaScript (``js/bayes.js``) draws the joints
    p(x, y) and the evidence p(x) over ``xlim``, the posterior p(y|x) below, and prints every term of Bayes' rule
    at the observed ``x``. ``class_names`` label the two classes.
    """

    _esm = _js("bayes")
    prior = traitlets.Float(0.5).tag(sync=True)
    mu0 = traitlets.Float(-1.0).tag(sync=True)
    sigma0 = traitlets.Float(1.0).tag(sync=True)
    mu1 = traitlets.Float(1.0).tag(sync=True)
    sigma1 = traitlets.Float(1.0).tag(sync=True)
    x = traitlets.Float(0.0).tag(sync=True)
    xlim = traitlets.List(traitlets.Float(), default_value=[-5.0, 5.0]).tag(sync=True)
    class_names = traitlets.List(traitlets.Unicode(), default_value=["y = 0", "y = 1"]).tag(sync=True)

    def __init__(self, prior: float = 0.5, mu0: float = -1.0, sigma0: float = 1.0, mu1: float = 1.0,
                 sigma1: float = 1.0, x: float = 0.0, *, xlim=(-5.0, 5.0), class_names=("y = 0", "y = 1"), **kwargs):
        if not 0 < float(prior) < 1:
            raise ValueError(f"prior must be a probability strictly between 0 and 1; got {prior}")
        lo, hi = (float(v) for v in xlim)
        if not lo < hi:
            raise ValueError(f"xlim must be (lo, hi) with lo < hi; got {tuple(xlim)}")
        if len(class_names) != 2:
            raise ValueError(f"class_names must name exactly 2 classes; got {list(class_names)}")
        super().__init__(prior=float(prior), mu0=float(mu0), sigma0=_check_positive("sigma0", sigma0), mu1=float(mu1),
                         sigma1=_check_positive("sigma1", sigma1), x=float(x), xlim=[lo, hi],
                         class_names=[str(c) for c in class_names], **kwargs)


class KLExplorer(anywidget.AnyWidget):
    """A Gaussian q = N(mu, sigma^2) against a fixed target p, a mixture of Gaussians; both KLs are printed.

    ``p_weights``, ``p_means``, ``p_sigmas`` define p(x) = sum_k w_k N(x; m_k, s_k^2) (the weights are normalised);
    the default is a bimodal p. The JavaScript (``js/kl.js``) draws both densities over ``xlim`` and computes
    KL(p || q) and KL(q || p) in nats with :meth:`quadrature`'s rule, so the numbers respond on a static page.
    """

    _esm = _js("kl")
    mu = traitlets.Float(0.0).tag(sync=True)
    sigma = traitlets.Float(1.0).tag(sync=True)
    p_weights = traitlets.List(traitlets.Float(), default_value=[0.5, 0.5]).tag(sync=True)
    p_means = traitlets.List(traitlets.Float(), default_value=[-2.0, 2.0]).tag(sync=True)
    p_sigmas = traitlets.List(traitlets.Float(), default_value=[0.6, 0.6]).tag(sync=True)
    xlim = traitlets.List(traitlets.Float(), default_value=[-6.0, 6.0]).tag(sync=True)
    grid_points = traitlets.Int(2001).tag(sync=True)

    def __init__(self, mu: float = 0.0, sigma: float = 1.0, *, p_weights=(0.5, 0.5), p_means=(-2.0, 2.0),
                 p_sigmas=(0.6, 0.6), xlim=(-6.0, 6.0), grid_points: int = 2001, **kwargs):
        weights, means, sigmas = ([float(v) for v in p_weights], [float(v) for v in p_means],
                                  [float(v) for v in p_sigmas])
        if not len(weights) == len(means) == len(sigmas) >= 1:
            raise ValueError("p_weights, p_means and p_sigmas must be lists of the same length >= 1; got lengths "
                             f"{len(weights)}, {len(means)}, {len(sigmas)}")
        if min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"p_weights must be non-negative with a positive sum; got {weights}")
        for s in sigmas:
            _check_positive("every p_sigmas entry", s)
        lo, hi = (float(v) for v in xlim)
        if not lo < hi:
            raise ValueError(f"xlim must be (lo, hi) with lo < hi; got {tuple(xlim)}")
        if int(grid_points) < 3:
            raise ValueError(f"grid_points must be an integer >= 3; got {grid_points}")
        super().__init__(mu=float(mu), sigma=_check_positive("sigma", sigma), p_weights=weights, p_means=means,
                         p_sigmas=sigmas, xlim=[lo, hi], grid_points=int(grid_points), **kwargs)

    def quadrature(self, mu: float | None = None, sigma: float | None = None) -> dict:
        """``{"forward": KL(p || q), "reverse": KL(q || p)}`` in nats by the JavaScript's rule, for q = N(mu, sigma^2).

        The trapezoidal rule on ``grid_points`` points over [lo, hi], 10 standard deviations beyond the outermost
        component of p and of q. ``mu`` and ``sigma`` default to the widget's current values.
        """
        import numpy as np
        from scipy.special import logsumexp

        mu = self.mu if mu is None else float(mu)
        sigma = self.sigma if sigma is None else _check_positive("sigma", sigma)
        w = np.asarray(self.p_weights) / np.sum(self.p_weights)
        m, s = np.asarray(self.p_means), np.asarray(self.p_sigmas)
        lo = min(mu - 10 * sigma, float(np.min(m - 10 * s)))
        hi = max(mu + 10 * sigma, float(np.max(m + 10 * s)))
        x = np.linspace(lo, hi, self.grid_points)
        log_normal = lambda x, mu, sd: -0.5 * ((x - mu) / sd) ** 2 - np.log(sd) - 0.5 * np.log(2 * np.pi)  # noqa: E731
        lp = logsumexp(np.log(w)[:, None] + log_normal(x[None, :], m[:, None], s[:, None]), axis=0)
        lq = log_normal(x, mu, sigma)
        h = np.full_like(x, (hi - lo) / (self.grid_points - 1))
        h[[0, -1]] *= 0.5
        return {"forward": float(np.sum(h * np.exp(lp) * (lp - lq))),
                "reverse": float(np.sum(h * np.exp(lq) * (lq - lp)))}


class ELBOExplorer(anywidget.AnyWidget):
    """The ELBO gap on the toy model z ~ N(0, 1), x | z ~ N(a z + b, s^2) (:class:`vaelib.toy.LinearGaussian`).

    Sliders move the observation ``x`` and q(z) = N(``mu``, exp(``log_sigma``)^2); the JavaScript (``js/elbo.js``)
    draws the prior, the exact posterior p(z|x) and q over [-``z_extent``, ``z_extent``], and a number line with
    log p(x), the ELBO and the gap KL(q || p(z|x)), all in closed form (nats), so it responds on a static page.
    :meth:`quantities` returns the same numbers from :mod:`vaelib.toy`.
    """

    _esm = _js("elbo")
    a = traitlets.Float(2.0).tag(sync=True)
    b = traitlets.Float(0.0).tag(sync=True)
    s = traitlets.Float(1.0).tag(sync=True)
    x = traitlets.Float(1.5).tag(sync=True)
    mu = traitlets.Float(0.0).tag(sync=True)
    log_sigma = traitlets.Float(0.0).tag(sync=True)
    z_extent = traitlets.Float(4.0).tag(sync=True)

    def __init__(self, a: float = 2.0, b: float = 0.0, s: float = 1.0, *, x: float = 1.5, mu: float = 0.0,
                 log_sigma: float = 0.0, z_extent: float = 4.0, **kwargs):
        from .toy import LinearGaussian

        toy = LinearGaussian(a, b, s)   # validates a != 0 and s > 0
        for name, value in (("x", x), ("mu", mu), ("log_sigma", log_sigma)):
            if not -1e6 < float(value) < 1e6:
                raise ValueError(f"{name} must be a finite number; got {value}")
        super().__init__(a=toy.a, b=toy.b, s=toy.s, x=float(x), mu=float(mu), log_sigma=float(log_sigma),
                         z_extent=_check_positive("z_extent", z_extent), **kwargs)

    def quantities(self) -> dict:
        """The numbers the widget shows, in nats, computed in Python by :class:`vaelib.toy.LinearGaussian`."""
        from .toy import LinearGaussian

        toy = LinearGaussian(self.a, self.b, self.s)
        m, std = toy.posterior(self.x)
        out = dict(logpx=toy.log_px(self.x), recon=toy.expected_log_likelihood(self.x, self.mu, self.log_sigma),
                   klPrior=toy.kl_to_prior(self.mu, self.log_sigma), elbo=toy.elbo(self.x, self.mu, self.log_sigma),
                   klPost=toy.kl_to_posterior(self.x, self.mu, self.log_sigma), postMean=m, postStd=std)
        out["gap"] = out["logpx"] - out["elbo"]
        return {k: float(v) for k, v in out.items()}


class ImageSliderExplorer(anywidget.AnyWidget):
    """A slider over F precomputed frames, each a row of N greyscale images (e.g. reconstructions per code size).

    ``ImageSliderExplorer(frames, frame_labels, reference=None, ...)``: ``frames`` (F, N, H, W) or (F, N, 1, H, W)
    with values in [0, 1] (clipped), stored as 8-bit grey levels in base64; ``frame_labels`` the F readouts;
    ``reference`` (N, H, W) an optional row drawn above (e.g. the inputs). The JavaScript (``js/imageslider.js``)
    only picks and draws a frame, so the widget responds on a static page. ``description`` starts the image's
    alt text, which ends with the current frame's label.
    """

    _esm = _js("imageslider")
    frames = traitlets.Unicode("").tag(sync=True)
    n_frames = traitlets.Int(1).tag(sync=True)
    n_images = traitlets.Int(1).tag(sync=True)
    height = traitlets.Int(28).tag(sync=True)
    width = traitlets.Int(28).tag(sync=True)
    reference = traitlets.Unicode("").tag(sync=True)
    frame_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    index = traitlets.Int(0).tag(sync=True)
    slider_label = traitlets.Unicode("frame").tag(sync=True)
    reference_label = traitlets.Unicode("input").tag(sync=True)
    frame_row_label = traitlets.Unicode("output").tag(sync=True)
    description = traitlets.Unicode("Images").tag(sync=True)

    def __init__(self, frames, frame_labels, reference=None, *, index: int = 0, slider_label: str = "frame",
                 reference_label: str = "input", frame_row_label: str = "output", description: str = "Images",
                 **kwargs):
        frames = self.to_uint8(frames, "frames")
        if frames.ndim == 5 and frames.shape[2] == 1:
            frames = frames[:, :, 0]
        if frames.ndim != 4 or 0 in frames.shape:
            raise ValueError(f"frames must have shape (F, N, H, W) or (F, N, 1, H, W); got {frames.shape}")
        f, n, h, w = frames.shape
        labels = [str(s) for s in frame_labels]
        if len(labels) != f:
            raise ValueError(f"frame_labels must have one label per frame ({f}); got {len(labels)}")
        ref = ""
        if reference is not None:
            reference = self.to_uint8(reference, "reference")
            if reference.size != n * h * w:
                raise ValueError(f"reference must hold N = {n} images of {h} x {w} pixels; got shape {reference.shape}")
            ref = self.b64(reference.reshape(n, h, w))
        if not 0 <= int(index) < f:
            raise ValueError(f"index must be in [0, {f - 1}]; got {index}")
        super().__init__(frames=self.b64(frames), n_frames=f, n_images=n, height=h, width=w, reference=ref,
                         frame_labels=labels, index=int(index), slider_label=str(slider_label),
                         reference_label=str(reference_label), frame_row_label=str(frame_row_label),
                         description=str(description), **kwargs)

    @staticmethod
    def to_uint8(values, name: str = "images"):
        """Values in [0, 1] (a tensor or array) as uint8 grey levels round(255 v), clipped to [0, 255]."""
        import numpy as np
        import torch

        if isinstance(values, torch.Tensor):
            values = values.detach().cpu().numpy()
        values = np.asarray(values, dtype=np.float64)
        if not np.isfinite(values).all():
            raise ValueError(f"{name} must be finite numbers in [0, 1]")
        return np.round(np.clip(values, 0.0, 1.0) * 255).astype(np.uint8)

    @staticmethod
    def b64(values) -> str:
        import base64

        import numpy as np

        return base64.b64encode(np.ascontiguousarray(values, dtype=np.uint8).tobytes()).decode("ascii")

    def frame(self, k: int):
        """Frame k as a uint8 array (N, H, W), decoded from the embedded state (what the JavaScript draws)."""
        import base64

        import numpy as np

        if not 0 <= int(k) < self.n_frames:
            raise ValueError(f"k must be in [0, {self.n_frames - 1}]; got {k}")
        data = np.frombuffer(base64.b64decode(self.frames), dtype=np.uint8)
        return data.reshape(self.n_frames, self.n_images, self.height, self.width)[int(k)]



class ReparamExplorer(anywidget.AnyWidget):
    """The reparameterisation z = mu + sigma * eps in two dimensions, for a fixed cloud of noise eps ~ N(0, I).

    ``ReparamExplorer(mu=(0, 0), sigma=(1, 1), n=300, seed=0)`` draws the ``n`` noise points once (NumPy, ``seed``)
    and embeds them; the sliders move mu and sigma and the JavaScript (``js/reparam.js``) moves the same points, draws
    q = N(mu, diag sigma^2) against the prior N(0, I) and prints KL(q || p) in closed form (nats) and the cloud's
    mean and standard deviation. :meth:`quantities` computes the same numbers in Python with ``vaelib.gaussian_kl``.
    """

    _esm = _js("reparam")
    mu1 = traitlets.Float(0.0).tag(sync=True)
    mu2 = traitlets.Float(0.0).tag(sync=True)
    sigma1 = traitlets.Float(1.0).tag(sync=True)
    sigma2 = traitlets.Float(1.0).tag(sync=True)
    eps = traitlets.List(traitlets.Float()).tag(sync=True)
    extent = traitlets.Float(4.0).tag(sync=True)
    n_lines = traitlets.Int(12).tag(sync=True)

    def __init__(self, mu=(0.0, 0.0), sigma=(1.0, 1.0), *, n: int = 300, seed: int = 0, extent: float = 4.0,
                 n_lines: int = 12, **kwargs):
        import numpy as np

        if len(mu) != 2 or len(sigma) != 2:
            raise ValueError(f"mu and sigma must each hold 2 numbers; got {list(mu)} and {list(sigma)}")
        sigma = [_check_positive("sigma", s) for s in sigma]
        if not 1 <= int(n) <= 5000:
            raise ValueError(f"n must be an integer from 1 to 5000; got {n}")
        eps = np.random.default_rng(seed).standard_normal((int(n), 2)).round(4)
        super().__init__(mu1=float(mu[0]), mu2=float(mu[1]), sigma1=sigma[0], sigma2=sigma[1],
                         eps=eps.reshape(-1).tolist(), extent=_check_positive("extent", extent),
                         n_lines=max(0, int(n_lines)), **kwargs)

    def quantities(self) -> dict:
        """What the widget prints, from Python: samples z (n, 2), their mean and std, KL per dimension and in total."""
        import torch

        from .losses import gaussian_kl

        eps = torch.tensor(self.eps, dtype=torch.float64).reshape(-1, 2)
        mu = torch.tensor([self.mu1, self.mu2], dtype=torch.float64)
        sigma = torch.tensor([self.sigma1, self.sigma2], dtype=torch.float64)
        z = mu + sigma * eps
        kl_dims = gaussian_kl(mu[None], 2 * sigma.log()[None], per_dim=True)[0]
        return {"z": z.reshape(-1).tolist(), "mean": z.mean(0).tolist(), "std": z.std(0, unbiased=False).tolist(),
                "klDims": kl_dims.tolist(), "kl": float(kl_dims.sum())}


class BetaExplorer(anywidget.AnyWidget):
    """A slider over VAEs trained with different beta: the reconstruction/KL trade-off, the KL of each latent
    dimension (active units filled), and reconstructions and prior samples, all precomputed in Python.

    ``BetaExplorer(betas, recon, kl, kl_dims, dim_active, inputs, reconstructions, samples, index=0)``:
    ``betas`` (F,); ``recon`` and ``kl`` (F,) in nats per example; ``kl_dims`` (F, D) in nats; ``dim_active`` (F, D)
    booleans (e.g. ``vaelib.active_units``' activity > 0.01); ``inputs`` (N, H, W) or (N, 1, H, W) in [0, 1];
    ``reconstructions`` and ``samples`` (F, N, ...) in [0, 1]. Images are stored as 8-bit grey levels in base64; the
    JavaScript (``js/beta.js``) only draws, so the widget responds on a static page.
    """

    _esm = _js("beta")
    betas = traitlets.List(traitlets.Float()).tag(sync=True)
    recon = traitlets.List(traitlets.Float()).tag(sync=True)
    kl = traitlets.List(traitlets.Float()).tag(sync=True)
    active = traitlets.List(traitlets.Int()).tag(sync=True)
    kl_dims = traitlets.List(traitlets.List(traitlets.Float())).tag(sync=True)
    dim_active = traitlets.List(traitlets.List(traitlets.Int())).tag(sync=True)
    images = traitlets.Unicode("").tag(sync=True)
    inputs = traitlets.Unicode("").tag(sync=True)
    n_images = traitlets.Int(1).tag(sync=True)
    height = traitlets.Int(28).tag(sync=True)
    width = traitlets.Int(28).tag(sync=True)
    index = traitlets.Int(0).tag(sync=True)

    def __init__(self, betas, recon, kl, kl_dims, dim_active, inputs, reconstructions, samples, *, index: int = 0,
                 **kwargs):
        import numpy as np

        betas, recon, kl = (np.asarray(v, dtype=np.float64).reshape(-1) for v in (betas, recon, kl))
        f = len(betas)
        kl_dims = np.asarray(kl_dims, dtype=np.float64)
        dim_active = np.asarray(dim_active, dtype=bool)
        if f == 0 or len(recon) != f or len(kl) != f or kl_dims.ndim != 2 or kl_dims.shape[0] != f \
                or dim_active.shape != kl_dims.shape:
            raise ValueError(f"betas, recon, kl must have one entry per VAE and kl_dims, dim_active shape (F, D); got "
                             f"{len(betas)}, {len(recon)}, {len(kl)}, {kl_dims.shape}, {dim_active.shape}")
        if not (np.isfinite(betas).all() and np.isfinite(recon).all() and np.isfinite(kl).all()
                and np.isfinite(kl_dims).all()) or (betas < 0).any():
            raise ValueError("betas (>= 0), recon, kl and kl_dims must be finite numbers")
        to_uint8 = ImageSliderExplorer.to_uint8
        inputs = to_uint8(inputs, "inputs")
        inputs = inputs.reshape(inputs.shape[0], *inputs.shape[-2:])
        n, h, w = inputs.shape
        rec, smp = to_uint8(reconstructions, "reconstructions"), to_uint8(samples, "samples")
        if rec.size != f * n * h * w or smp.size != f * n * h * w:
            raise ValueError(f"reconstructions and samples must hold F x N = {f} x {n} images of {h} x {w} pixels; "
                             f"got shapes {rec.shape} and {smp.shape}")
        both = np.stack([rec.reshape(f, n, h, w), smp.reshape(f, n, h, w)], axis=1)   # (F, 2, N, H, W)
        if not 0 <= int(index) < f:
            raise ValueError(f"index must be in [0, {f - 1}]; got {index}")
        super().__init__(betas=betas.tolist(), recon=recon.tolist(), kl=kl.tolist(),
                         active=dim_active.sum(1).astype(int).tolist(), kl_dims=kl_dims.tolist(),
                         dim_active=dim_active.astype(int).tolist(), images=ImageSliderExplorer.b64(both),
                         inputs=ImageSliderExplorer.b64(inputs), n_images=n, height=h, width=w, index=int(index),
                         **kwargs)



class TrainingExplorer(anywidget.AnyWidget):
    """Train a VAE with a 2-D latent in the reader's browser, on images embedded in the page, and watch it learn.

    ``TrainingExplorer(images, labels, n_images=5000, seed=0, ...)`` picks ``n_images`` of the images at random
    (NumPy, ``seed``), binarises them as ``load_dataset(..., binarize="static")`` does (a pixel is 1 where its grey
    value is > ``vaelib.data.STATIC_THRESHOLD``) and embeds them bit-packed, one bit per pixel, with their labels.
    The JavaScript (``js/train.js``) trains ``vaelib.VAE(H * W, hidden=(hidden,), latent_dim=2)`` on them: the
    negative ELBO with a weight ``beta`` on the KL, one reparameterised sample per image, Adam with learning rate
    ``lr`` on minibatches of ``batch_size``, in slices of a few tens of milliseconds between animation frames so
    that the page stays responsive. A **Train** button starts and pauses it, **Reset** draws new weights, and
    sliders set beta and the learning rate while it runs. Drawn live: the reconstruction and KL terms (nats per
    image), the posterior means of the first ``n_plot`` images (default: up to 1000) coloured by label, ``n_show``
    reconstructions and samples decoded from the prior. The root element carries ``data-vaelib-widget="train"``;
    the current negative ELBO (the mean of the last 20 minibatches, nats per image) is the ``data-vaelib-loss``
    attribute of its readout, and the between-class over within-class variance of the drawn means is
    ``data-vaelib-separation``.

    Why a hand-written forward and backward pass rather than a library such as TensorFlow.js: the network is two
    small MLPs, whose gradients take about a hundred lines; a library would add megabytes of script to every
    page that shows the widget, one more asset for the book to serve (an anywidget module cannot import files
    beside it), and a GPU backend whose float16/float32 arithmetic varies between machines. Written out by hand,
    the loss and every gradient are plain float64 arithmetic on float32 weights, which the tests compare with
    ``vaelib``'s loss and PyTorch's autograd under Node.js (``tests/test_widgets_train.py``). The binary inputs also
    let the first layer visit only the pixels that are on.
    """

    _esm = _js("train")
    images = traitlets.Unicode("").tag(sync=True)
    labels = traitlets.Unicode("").tag(sync=True)
    n_images = traitlets.Int(0).tag(sync=True)
    height = traitlets.Int(28).tag(sync=True)
    width = traitlets.Int(28).tag(sync=True)
    hidden = traitlets.Int(128).tag(sync=True)
    batch_size = traitlets.Int(32).tag(sync=True)
    seed = traitlets.Int(0).tag(sync=True)
    n_plot = traitlets.Int(1000).tag(sync=True)
    n_show = traitlets.Int(8).tag(sync=True)
    beta_log10 = traitlets.Float(0.0).tag(sync=True)
    lr_log10 = traitlets.Float(-2.5).tag(sync=True)
    label_names = traitlets.List(traitlets.Unicode()).tag(sync=True)

    #: The sliders' ranges: beta from 0.1 to 100, the learning rate from 1e-4 to 1e-2 (log scales).
    BETA_RANGE = (0.1, 100.0)
    LR_RANGE = (1e-4, 1e-2)
    #: The most the embedded images and labels may add to the page, in bytes of base64 text (issue 12: 2 MB).
    MAX_BYTES = 2_000_000

    def __init__(self, images, labels, *, n_images: int = 5000, hidden: int = 128, batch_size: int = 32,
                 beta: float = 1.0, lr: float = 3e-3, seed: int = 0, n_plot: int | None = None, n_show: int = 8,
                 label_names=None, max_bytes: int = MAX_BYTES, **kwargs):
        import base64
        import math

        import numpy as np
        import torch

        from .data import STATIC_THRESHOLD

        as_numpy = lambda v: v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)  # noqa: E731
        x = as_numpy(images)
        if x.ndim == 4 and x.shape[1] == 1:
            x = x[:, 0]
        if x.ndim != 3 or 0 in x.shape:
            raise ValueError(f"images must have shape (N, 1, H, W) or (N, H, W); got {tuple(x.shape)}")
        if not np.issubdtype(x.dtype, np.number) or not np.isfinite(x).all() or x.min() < 0 or x.max() > 1:
            raise ValueError("images must be finite numbers in [0, 1] (as vaelib.load_dataset returns them)")
        n, h, w = x.shape
        if h * w > 65535:
            raise ValueError(f"images must have at most 65535 pixels; got {h} x {w}")
        y = as_numpy(labels)
        if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer) or (n and (y.min() < 0 or y.max() > 255)):
            raise ValueError(f"labels must be {n} integers from 0 to 255, shape ({n},); got shape {tuple(y.shape)} "
                             f"of {y.dtype}")
        ints = {"n_images": (n_images, 1, n), "hidden": (hidden, 1, 1024), "n_show": (n_show, 1, 16)}
        for name, (value, lo, hi) in ints.items():
            if isinstance(value, bool) or int(value) != value or not lo <= int(value) <= hi:
                raise ValueError(f"{name} must be an integer from {lo} to {hi}; got {value!r}")
        n_images = int(n_images)
        n_plot = min(1000, n_images) if n_plot is None else n_plot
        for name, value in (("batch_size", batch_size), ("n_plot", n_plot)):
            if isinstance(value, bool) or int(value) != value or not 1 <= int(value) <= n_images:
                raise ValueError(f"{name} must be an integer from 1 to n_images = {n_images}; got {value!r}")
        for name, value, (lo, hi) in (("beta", beta, self.BETA_RANGE), ("lr", lr, self.LR_RANGE)):
            if not lo <= float(value) <= hi:
                raise ValueError(f"{name} must be a number from {lo:g} to {hi:g} (the slider's range); got {value!r}")

        keep = np.random.default_rng(seed).permutation(n)[:n_images]
        bits = np.packbits((x[keep] > STATIC_THRESHOLD).reshape(n_images, h * w), axis=1)
        state = dict(images=base64.b64encode(bits.tobytes()).decode("ascii"),
                     labels=base64.b64encode(y[keep].astype(np.uint8).tobytes()).decode("ascii"))
        size = len(state["images"]) + len(state["labels"])
        if size > max_bytes:
            per_image = size / n_images
            raise ValueError(f"the {n_images} embedded images of {h} x {w} pixels would add {size:,} bytes to the "
                             f"page, more than max_bytes = {max_bytes:,}: use n_images <= "
                             f"{int(max_bytes // per_image)}")
        if label_names is not None:
            state["label_names"] = [str(s) for s in label_names]
        super().__init__(**state, n_images=n_images, height=h, width=w, hidden=int(hidden),
                         batch_size=int(batch_size), seed=int(seed), n_plot=int(n_plot), n_show=int(n_show),
                         beta_log10=round(math.log10(beta), 4), lr_log10=round(math.log10(lr), 4), **kwargs)

    def embedded_bytes(self) -> int:
        """The size in bytes of the base64 text this widget embeds in the page (images and labels)."""
        return len(self.images) + len(self.labels)

    def binary_images(self):
        """The embedded images as a uint8 array (n_images, height, width) of 0 and 1 (what the JavaScript trains on)."""
        import base64

        import numpy as np

        d = self.height * self.width
        bits = np.frombuffer(base64.b64decode(self.images), dtype=np.uint8).reshape(self.n_images, -1)
        return np.unpackbits(bits, axis=1)[:, :d].reshape(self.n_images, self.height, self.width)

    def image_labels(self):
        """The embedded labels, a uint8 array (n_images,)."""
        import base64

        import numpy as np

        return np.frombuffer(base64.b64decode(self.labels), dtype=np.uint8).copy()
