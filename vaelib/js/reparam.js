// Reparameterisation explorer (chapter 5): z = mu + sigma * eps for a fixed cloud of noise eps ~ N(0, I_2).
//
// The noise is drawn once, in Python, and embedded in the page; moving the sliders changes only mu and sigma, so the
// same points slide and stretch: each z is a differentiable function of (mu, sigma) with dz/dmu = 1, dz/dsigma = eps.
// The readout prints KL(q || p) for q = N(mu, diag sigma^2) and p = N(0, I) in closed form (nats), per dimension
// 0.5 * (mu^2 + sigma^2 - 1 - log sigma^2), and the sample mean and standard deviation of the cloud.
// State (synced from Python, see vaelib.widgets.ReparamExplorer): mu1, mu2, sigma1, sigma2, eps (flat list
// [e1_0, e2_0, e1_1, e2_1, ...]), extent (the plane drawn is [-extent, extent]^2), n_lines (noise-to-sample links drawn).

const CE = "#7f7f7f", CZ = "#d62728", CP = "#1f77b4";   // matplotlib's tab10 grey (eps), red (z), blue (prior)

export function reparamState({ mu1, mu2, sigma1, sigma2, eps }) {
  // The samples z_i = mu + sigma * eps_i, their mean and standard deviation, and the closed-form KL to N(0, I).
  const n = Math.floor(eps.length / 2), mu = [mu1, mu2], sigma = [sigma1, sigma2];
  const z = new Array(2 * n);
  const mean = [0, 0], sq = [0, 0];
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < 2; j++) {
      const v = mu[j] + sigma[j] * eps[2 * i + j];
      z[2 * i + j] = v;
      mean[j] += v / n;
    }
  }
  for (let i = 0; i < n; i++) for (let j = 0; j < 2; j++) sq[j] += (z[2 * i + j] - mean[j]) ** 2 / n;
  const klDims = [0, 1].map((j) => 0.5 * (mu[j] ** 2 + sigma[j] ** 2 - 1 - Math.log(sigma[j] ** 2)));
  return { z, mean, std: sq.map(Math.sqrt), klDims, kl: klDims[0] + klDims[1] };
}

const fmt = (v, d = 2) => (Math.abs(v) < 0.5 * 10 ** -d ? 0 : v).toFixed(d);

export default {
  render({ model, el }) {
    const uid = uniqueId("reparam");
    const S = 380, PAD = 40;                      // canvas side and margin for the axes labels, CSS pixels

    const root = widgetRoot("reparam");
    const canvas = figureCanvas();
    const side = sidePanel("min-width:16rem;max-width:24rem");
    const inputs = sliderTable(side, uid, [
      ["mu1", "mean \u03bc\u2081", -3, 3, 0.05], ["mu2", "mean \u03bc\u2082", -3, 3, 0.05],
      ["sigma1", "standard deviation \u03c3\u2081", 0.1, 2, 0.05], ["sigma2", "standard deviation \u03c3\u2082", 0.1, 2, 0.05],
    ], { labelWidth: "11rem" });
    for (const [name, { input }] of Object.entries(inputs)) bindSlider(model, input, name, () => draw());
    const readout = readoutBox("vaelib-reparam-readout", "line-height:1.5;white-space:pre-line");
    side.appendChild(readout);
    root.append(canvas, side);
    el.appendChild(root);

    function draw() {
      const p = { mu1: model.get("mu1"), mu2: model.get("mu2"), sigma1: model.get("sigma1"),
                  sigma2: model.get("sigma2"), eps: model.get("eps") || [] };
      for (const [name, { input, value }] of Object.entries(inputs)) syncSlider(input, value, p[name], fmt(p[name]));
      const st = reparamState(p);
      const E = model.get("extent") || 4, nLines = model.get("n_lines") || 0, n = st.z.length / 2;
      const ctx = prepareCanvas(canvas, S, S);
      const inner = S - PAD - 10, TOP = 10;          // the square plot: left PAD, top TOP, side inner
      const X = (v) => PAD + ((v + E) / (2 * E)) * inner, Y = (v) => TOP + ((E - v) / (2 * E)) * inner;
      const ticks = [];
      for (let t = -Math.floor(E); t <= Math.floor(E); t++) ticks.push(t);
      drawAxes(ctx, { x: X(-E), y: Y(E), w: inner, h: inner }, { X, Y, xticks: ticks, yticks: ticks,
                                                                 xlabel: "z\u2081", ylabel: "z\u2082", ylabelX: 11 });
      ctx.save();
      ctx.beginPath();
      ctx.rect(X(-E), Y(E), inner, inner);
      ctx.clip();
      const scale = inner / (2 * E);
      const ellipse = (cx, cy, rx, ry, color, dash) => {
        ctx.strokeStyle = color;
        ctx.setLineDash(dash);
        ctx.beginPath();
        ctx.ellipse(X(cx), Y(cy), rx * scale, ry * scale, 0, 0, 2 * Math.PI);
        ctx.stroke();
      };
      ctx.lineWidth = 1.5;
      for (const r of [1, 2]) ellipse(0, 0, r, r, CP, [5, 4]);                       // the prior N(0, I)
      for (const r of [1, 2]) ellipse(p.mu1, p.mu2, r * p.sigma1, r * p.sigma2, CZ, []); // q = N(mu, diag sigma^2)
      ctx.setLineDash([]);
      const eps = p.eps;
      ctx.strokeStyle = "rgba(80,80,80,0.45)";
      ctx.lineWidth = 0.8;
      for (let i = 0; i < Math.min(nLines, n); i++) {         // a few links eps_i -> z_i: the same noise, moved
        ctx.beginPath();
        ctx.moveTo(X(eps[2 * i]), Y(eps[2 * i + 1]));
        ctx.lineTo(X(st.z[2 * i]), Y(st.z[2 * i + 1]));
        ctx.stroke();
      }
      ctx.fillStyle = CE;
      for (let i = 0; i < n; i++) ctx.fillRect(X(eps[2 * i]) - 1, Y(eps[2 * i + 1]) - 1, 2, 2);
      ctx.fillStyle = CZ;
      for (let i = 0; i < n; i++) {
        ctx.beginPath();
        ctx.arc(X(st.z[2 * i]), Y(st.z[2 * i + 1]), 2.2, 0, 2 * Math.PI);
        ctx.fill();
      }
      ctx.restore();
      readout.textContent =
        `q = N(\u03bc, diag \u03c3\u00b2) with \u03bc = (${fmt(p.mu1)}, ${fmt(p.mu2)}), \u03c3 = (${fmt(p.sigma1)}, ${fmt(p.sigma2)})\n` +
        `KL(q \u2016 p) = ${fmt(st.klDims[0], 3)} + ${fmt(st.klDims[1], 3)} = ${fmt(st.kl, 3)} nats\n` +
        `${n} samples z = \u03bc + \u03c3 \u2299 \u03b5: mean (${fmt(st.mean[0])}, ${fmt(st.mean[1])}), ` +
        `standard deviation (${fmt(st.std[0])}, ${fmt(st.std[1])})\n` +
        `\u2202z/\u2202\u03bc = 1 and \u2202z/\u2202\u03c3 = \u03b5: the noise is an input, so gradients reach \u03bc and \u03c3.`;
      canvas.setAttribute("aria-label",
        `Latent plane from -${E} to ${E} on both axes. Grey dots: ${n} fixed noise draws \u03b5 from N(0, I); ` +
        `red dots: the samples z = \u03bc + \u03c3 \u03b5 with \u03bc = (${fmt(p.mu1)}, ${fmt(p.mu2)}) and ` +
        `\u03c3 = (${fmt(p.sigma1)}, ${fmt(p.sigma2)}), inside red ellipses at one and two standard deviations; ` +
        `dashed blue circles of radius 1 and 2 show the prior. KL to the prior ${fmt(st.kl, 3)} nats.`);
    }

    draw();
    return onChanges(model, ["mu1", "mu2", "sigma1", "sigma2", "eps", "extent", "n_lines"], draw);
  },
};
