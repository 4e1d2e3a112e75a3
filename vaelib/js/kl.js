// KL explorer: a Gaussian q = N(mu, sigma^2) against a fixed target p, a mixture of Gaussians
// p(x) = sum_k w_k N(x; m_k, s_k^2). Moving a slider redraws here, in the browser (no kernel needed), and prints
//   forward KL(p || q) = integral p log(p / q) dx   and   reverse KL(q || p) = integral q log(q / p) dx,
// both in nats, computed by the trapezoidal rule on a grid of `grid_points` points over [lo, hi], where lo and hi
// lie 10 standard deviations beyond the outermost component of p and of q (vaelib.widgets.KLExplorer.quadrature is
// the same rule in Python; the tests check both against the closed form).
// State (synced from Python): mu, sigma, p_weights, p_means, p_sigmas (lists), xlim [lo, hi], grid_points.

const CP = "#1f77b4", CQ = "#d62728";   // matplotlib's tab10 blue (p) and red (q)
const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);

export function logNormal(x, mu, sigma) {
  const u = (x - mu) / sigma;
  return -0.5 * u * u - Math.log(sigma) - HALF_LOG_2PI;
}

export function logMixture(x, p) {
  // log sum_k w_k N(x; m_k, s_k^2), with the weights normalised and a log-sum-exp for the far tails.
  const total = p.weights.reduce((a, b) => a + b, 0);
  const terms = p.weights.map((w, k) => Math.log(w / total) + logNormal(x, p.means[k], p.sigmas[k]));
  const top = Math.max(...terms);
  return top + Math.log(terms.reduce((a, t) => a + Math.exp(t - top), 0));
}

export function klQuadrature(q, p, n = 2001) {
  // {forward: KL(p||q), reverse: KL(q||p)} in nats, trapezoidal rule on n points; q = {mu, sigma}, p as logMixture.
  const lo = Math.min(q.mu - 10 * q.sigma, ...p.means.map((m, k) => m - 10 * p.sigmas[k]));
  const hi = Math.max(q.mu + 10 * q.sigma, ...p.means.map((m, k) => m + 10 * p.sigmas[k]));
  const h = (hi - lo) / (n - 1);
  let forward = 0, reverse = 0;
  for (let i = 0; i < n; i++) {
    const x = lo + i * h, w = i === 0 || i === n - 1 ? 0.5 * h : h;
    const lp = logMixture(x, p), lq = logNormal(x, q.mu, q.sigma);
    forward += w * Math.exp(lp) * (lp - lq);
    reverse += w * Math.exp(lq) * (lq - lp);
  }
  return { forward, reverse, lo, hi };
}

export default {
  render({ model, el }) {
    const uid = uniqueId("kl");
    const W = 520, H = 280, box = { x: 52, y: 10, w: 458, h: 226 };

    const root = widgetRoot("kl");
    const canvas = figureCanvas();
    const side = sidePanel("min-width:15rem");
    const sliders = sliderTable(side, uid, [["mu", "mean \u03bc of q", -5, 5, 0.05], ["sigma", "std \u03c3 of q", 0.2, 4, 0.05]],
                                { labelWidth: "6.5rem" });
    const readout = readoutBox("vaelib-kl-readout", "max-width:22rem;line-height:1.5;white-space:pre-line");
    side.appendChild(readout);
    root.append(canvas, side);
    el.appendChild(root);

    function draw() {
      const q = { mu: Number(model.get("mu")), sigma: Number(model.get("sigma")) };
      const p = { weights: model.get("p_weights"), means: model.get("p_means"), sigmas: model.get("p_sigmas") };
      const [lo, hi] = model.get("xlim") || [-6, 6];
      for (const name of ["mu", "sigma"]) syncSlider(sliders[name].input, sliders[name].value, q[name]);
      const kl = klQuadrature(q, p, model.get("grid_points") || 2001);

      const xs = Array.from({ length: 501 }, (_, i) => lo + (hi - lo) * i / 500);
      const ps = xs.map((x) => Math.exp(logMixture(x, p))), qs = xs.map((x) => Math.exp(logNormal(x, q.mu, q.sigma)));
      const ymax = Math.max(...ps, ...qs) * 1.08;
      const px = (v) => box.x + (v - lo) / (hi - lo) * box.w;
      const py = (v) => box.y + box.h - v / ymax * box.h;

      const ctx = prepareCanvas(canvas, W, H);
      fillUnder(ctx, xs, ps, px, py, CP, 0.3);   // p filled, q as a line
      polyline(ctx, xs, ps, px, py, CP);
      polyline(ctx, xs, qs, px, py, CQ);
      const xticks = [], yticks = [], step = ymax > 2 ? 1 : ymax > 0.8 ? 0.2 : 0.1;
      for (let t = Math.ceil(lo); t <= hi; t++) xticks.push(t);
      for (let t = 0; t <= ymax; t += step) yticks.push(t);
      drawAxes(ctx, box, { X: px, Y: py, xticks, yticks, xlabel: "x", ylabel: "density", yfmt: (t) => t.toFixed(1) });
      drawLegend(ctx, box.x + 8, box.y + 11, [[CP, "target p"], [CQ, `q = N(${q.mu.toFixed(2)}, ${q.sigma.toFixed(2)}\u00b2)`]], 15);

      readout.textContent =
        `forward KL(p \u2016 q) = ${kl.forward.toFixed(3)} nats\n(large where q misses mass of p: mass-covering)\n` +
        `reverse KL(q \u2016 p) = ${kl.reverse.toFixed(3)} nats\n(large where q puts mass that p lacks: mode-seeking)`;
      canvas.setAttribute("aria-label",
        `Densities over x from ${lo} to ${hi}: the target p, a mixture of ${p.means.length} Gaussians with means ` +
        `${p.means.map((m) => m.toFixed(1)).join(", ")} (blue, filled), and q, a Gaussian with mean ${q.mu.toFixed(2)} ` +
        `and standard deviation ${q.sigma.toFixed(2)} (red). KL(p||q) = ${kl.forward.toFixed(3)} nats, ` +
        `KL(q||p) = ${kl.reverse.toFixed(3)} nats.`);
    }

    for (const name of ["mu", "sigma"]) bindSlider(model, sliders[name].input, name, draw);
    draw();
    return onChanges(model, ["mu", "sigma", "p_weights", "p_means", "p_sigmas", "xlim", "grid_points"], draw);
  },
};
