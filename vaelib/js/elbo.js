// ELBO explorer: move q(z) = N(mu, sigma^2) and watch the ELBO, log p(x) and the gap between them.
//
// The toy model is vaelib.toy.LinearGaussian: z ~ N(0, 1), x | z ~ N(a z + b, s^2). Every quantity has a closed form,
// computed here in the browser (so the widget works on the book's static page, with no kernel):
//   log p(x)          = log N(x; b, a^2 + s^2)
//   p(z|x)            = N(m, v),  v = s^2 / (a^2 + s^2),  m = v a (x - b) / s^2
//   E_q log p(x|z)    = -0.5 log(2 pi s^2) - ((x - a mu - b)^2 + a^2 sigma^2) / (2 s^2)
//   KL(q || p(z))     = 0.5 (mu^2 + sigma^2 - 1 - log sigma^2)
//   ELBO              = E_q log p(x|z) - KL(q || p(z))
//   gap               = log p(x) - ELBO = KL(q || p(z|x))
// State (synced from Python, see vaelib.widgets.ELBOExplorer): a, b, s, x, mu, log_sigma, z_extent.

const LOG_2PI = Math.log(2 * Math.PI);
const COLORS = { prior: "#7f7f7f", post: "#1f77b4", q: "#d62728", elbo: "#d62728", logpx: "#1f77b4" };

const logNormal = (x, mean, v) => -0.5 * (LOG_2PI + Math.log(v) + (x - mean) ** 2 / v);
const klNormal = (m1, v1, m2, v2) => 0.5 * (Math.log(v2 / v1) + (v1 + (m1 - m2) ** 2) / v2 - 1);

export function toyQuantities({ a, b, s, x, mu, log_sigma }) {
  // Every number the widget shows, in nats, for q = N(mu, exp(log_sigma)^2).
  const s2 = s * s, sig2 = Math.exp(2 * log_sigma);
  const postVar = s2 / (a * a + s2);
  const postMean = postVar * a * (x - b) / s2;
  const logpx = logNormal(x, b, a * a + s2);
  const recon = -0.5 * (LOG_2PI + Math.log(s2)) - ((x - a * mu - b) ** 2 + a * a * sig2) / (2 * s2);
  const klPrior = 0.5 * (mu * mu + sig2 - 1 - 2 * log_sigma);
  const elbo = recon - klPrior;
  const klPost = klNormal(mu, sig2, postMean, postVar);
  return { logpx, recon, klPrior, elbo, gap: logpx - elbo, klPost, postMean, postStd: Math.sqrt(postVar) };
}

export default {
  render({ model, el }) {
    const uid = uniqueId("elbo");
    const W = 420, H1 = 210, H2 = 110, L = 44, R = 12, T = 10, B = 30;   // CSS pixels

    const root = widgetRoot("elbo", { gap: "1.25rem" });
    const plots = sidePanel();
    const dens = figureCanvas(), line = figureCanvas();
    plots.append(dens, line);

    const side = sidePanel("gap:0.5rem;max-width:22rem");
    const sliders = Object.fromEntries(Object.entries(sliderTable(side, uid, [
      ["x", "observation x", -6, 6, 0.05],
      ["mu", "q's mean \u03bc", -4, 4, 0.01],
      ["log_sigma", "q's log-std log \u03c3", -3, 1.5, 0.01],
    ], { labelWidth: "9rem", inputWidth: "10rem", showValue: false })).map(([k, v]) => [k, v.input]));
    const snap = make("button", { type: "button" }, "Set q to the exact posterior");
    snap.style.cssText = "align-self:flex-start";
    side.appendChild(snap);
    const readout = readoutBox("vaelib-elbo-readout", "line-height:1.5");
    side.appendChild(readout);
    root.append(plots, side);
    el.appendChild(root);

    const params = () => ({ a: model.get("a"), b: model.get("b"), s: model.get("s"), x: model.get("x"),
                            mu: model.get("mu"), log_sigma: model.get("log_sigma") });

    function drawDensities(p, r) {
      const ctx = prepareCanvas(dens, W, H1);
      const ext = model.get("z_extent") || 4, N = 400;
      const sigma = Math.exp(p.log_sigma);
      const curves = [
        ["prior", (z) => Math.exp(logNormal(z, 0, 1)), [2, 3]],
        ["post", (z) => Math.exp(logNormal(z, r.postMean, r.postStd ** 2)), []],
        ["q", (z) => Math.exp(logNormal(z, p.mu, sigma ** 2)), [7, 4]],
      ];
      let ymax = 0.45;
      for (const [, f] of curves) for (let i = 0; i <= N; i++) ymax = Math.max(ymax, f(-ext + 2 * ext * i / N));
      ymax = Math.min(ymax * 1.08, 4);
      const px = (z) => L + (z + ext) / (2 * ext) * (W - L - R);
      const py = (d) => T + (1 - Math.min(d, ymax) / ymax) * (H1 - T - B);
      const xticks = [], yticks = [], step = ymax > 2 ? 1 : ymax > 0.8 ? 0.5 : 0.2;
      for (let t = -Math.floor(ext); t <= ext; t++) xticks.push(t);
      for (let t = 0; t <= ymax; t += step) yticks.push(t);
      drawAxes(ctx, { x: L, y: T, w: W - L - R, h: H1 - T - B }, { X: px, Y: py, xticks, yticks, xlabel: "latent z",
                                                                   ylabel: "density", yfmt: (t) => t.toFixed(1), ylabelX: 10 });
      // The three densities.
      const zs = Array.from({ length: N + 1 }, (_, i) => -ext + 2 * ext * i / N);
      for (const [key, f, dash] of curves) polyline(ctx, zs, zs.map(f), px, py, COLORS[key], { dash });
      // Legend.
      ctx.textAlign = "left"; ctx.textBaseline = "middle";
      [["prior p(z)", "prior", [2, 3]], ["posterior p(z|x)", "post", []], ["q(z)", "q", [7, 4]]].forEach(([t, key, dash], i) => {
        const y = T + 10 + 14 * i;
        ctx.strokeStyle = COLORS[key]; ctx.setLineDash(dash); ctx.beginPath(); ctx.moveTo(W - R - 128, y); ctx.lineTo(W - R - 104, y); ctx.stroke();
        ctx.setLineDash([]); ctx.fillStyle = "#222222"; ctx.fillText(t, W - R - 100, y);
      });
      dens.setAttribute("aria-label",
        `Densities over the latent z from ${-ext} to ${ext}: the prior N(0, 1), the exact posterior p(z|x) with mean ` +
        `${r.postMean.toFixed(2)} and standard deviation ${r.postStd.toFixed(2)}, and q with mean ${p.mu.toFixed(2)} ` +
        `and standard deviation ${sigma.toFixed(2)}.`);
    }

    function drawNumberLine(r) {
      // A horizontal axis in nats: log p(x) (fixed for a given x), the ELBO below it, and the gap between them.
      const ctx = prepareCanvas(line, W, H2);
      const hi = r.logpx + 1.5, lo = r.logpx - 8;   // room on the right for the log p(x) label
      const px = (v) => L + (Math.max(lo, Math.min(hi, v)) - lo) / (hi - lo) * (W - L - R);
      const y = 52;
      ctx.strokeStyle = "#333333"; ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(L, y); ctx.lineTo(W - R, y); ctx.stroke();
      ctx.fillStyle = "#222222"; ctx.textAlign = "center"; ctx.textBaseline = "top";
      for (let t = Math.ceil(lo); t <= hi; t++) { ctx.fillRect(px(t) - 0.5, y, 1, 4); ctx.fillText(String(t), px(t), y + 6); }
      ctx.fillText("nats", L + (W - L - R) / 2, H2 - 16);
      // The gap, shaded.
      ctx.fillStyle = "rgba(214, 39, 40, 0.18)";
      ctx.fillRect(px(r.elbo), y - 16, px(r.logpx) - px(r.elbo), 16);
      ctx.textBaseline = "bottom";
      ctx.fillStyle = COLORS.logpx; ctx.fillRect(px(r.logpx) - 1.5, y - 22, 3, 22);
      ctx.textAlign = "left"; ctx.fillText("log p(x)", px(r.logpx) + 4, y - 24);
      ctx.fillStyle = COLORS.elbo; ctx.fillRect(px(r.elbo) - 1.5, y - 22, 3, 22);
      if (r.elbo < lo) { ctx.textAlign = "left"; ctx.fillText("\u2190 ELBO (off scale)", L + 4, y - 24); }
      else { ctx.textAlign = "right"; ctx.fillText("ELBO", px(r.elbo) - 4, y - 24); }
      ctx.fillStyle = "#222222"; ctx.textAlign = "center"; ctx.textBaseline = "top";
      ctx.fillText(`gap = KL(q \u2016 p(z|x)) = ${r.gap.toFixed(3)}`, L + (W - L - R) / 2, 2);
      line.setAttribute("aria-label",
        `Number line in nats: log p(x) = ${r.logpx.toFixed(3)}, ELBO = ${r.elbo.toFixed(3)}, ` +
        `and the shaded gap between them, ${r.gap.toFixed(3)} nats.`);
    }

    function draw() {
      const p = params();
      const r = toyQuantities(p);
      for (const name of Object.keys(sliders)) syncSlider(sliders[name], null, model.get(name), `${name} = ${model.get(name).toFixed(2)}`);
      drawDensities(p, r);
      drawNumberLine(r);
      readout.replaceChildren();
      for (const text of [
        `log p(x) = ${r.logpx.toFixed(3)} nats`,
        `E_q[log p(x|z)] = ${r.recon.toFixed(3)} (reconstruction)`,
        `KL(q \u2016 p(z)) = ${r.klPrior.toFixed(3)} (prior matching)`,
        `ELBO = ${r.elbo.toFixed(3)} nats`,
        `gap log p(x) \u2212 ELBO = ${r.gap.toFixed(3)}`,
        `KL(q \u2016 p(z|x)) = ${r.klPost.toFixed(3)}`,
      ]) readout.appendChild(make("div", {}, text));
    }

    function set(changes) {
      for (const [k, v] of Object.entries(changes)) model.set(k, Math.round(v * 1000) / 1000);
      model.save_changes();
      draw();   // local redraw: works on a static page with no kernel
    }

    for (const name of Object.keys(sliders)) bindSlider(model, sliders[name], name, draw, (v) => Math.round(Number(v) * 1000) / 1000);
    snap.addEventListener("click", () => {
      const r = toyQuantities(params());
      set({ mu: r.postMean, log_sigma: Math.log(r.postStd) });
    });

    draw();
    return onChanges(model, ["a", "b", "s", "x", "mu", "log_sigma", "z_extent"], draw);
  },
};
