// KL explorer: a Gaussian q = N(mu, sigma^2) against a fixed target p, a mixture of Gaussians
// p(x) = sum_k w_k N(x; m_k, s_k^2). Moving a slider redraws here, in the browser (no kernel needed), and prints
//   forward KL(p || q) = integral p log(p / q) dx   and   reverse KL(q || p) = integral q log(q / p) dx,
// both in nats, computed by the trapezoidal rule on a grid of `grid_points` points over [lo, hi], where lo and hi
// lie 10 standard deviations beyond the outermost component of p and of q (vaelib.widgets.KLExplorer.quadrature is
// the same rule in Python; the tests check both against the closed form).
// State (synced from Python): mu, sigma, p_weights, p_means, p_sigmas (lists), xlim [lo, hi], grid_points.

const CP = "#1f77b4", CQ = "#d62728";   // matplotlib's tab10 blue (p) and red (q)
const HALF_LOG_2PI = 0.5 * Math.log(2 * Math.PI);
let counter = 0;

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

function make(tag, attrs = {}, text = null) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== null) e.textContent = text;
  return e;
}

export default {
  render({ model, el }) {
    const uid = `vaelib-kl-${++counter}-${Math.random().toString(36).slice(2, 8)}`;
    const W = 520, H = 280, box = { x: 52, y: 10, w: 458, h: 226 };

    const root = make("div", { "data-vaelib-widget": "kl", class: "vaelib-kl" });
    root.style.cssText = "display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start;font-family:inherit;color:inherit";
    const canvas = make("canvas", { role: "img", width: W, height: H });
    canvas.style.cssText = `width:${W}px;height:${H}px;max-width:100%;display:block`;
    const side = make("div");
    side.style.cssText = "display:flex;flex-direction:column;gap:0.4rem;min-width:15rem";
    const inputs = {}, values = {};
    for (const [name, text, min, max, step] of [["mu", "mean \u03bc of q", -5, 5, 0.05],
                                                 ["sigma", "std \u03c3 of q", 0.2, 4, 0.05]]) {
      const row = make("div");
      row.style.cssText = "display:flex;align-items:center;gap:0.5rem";
      const id = `${uid}-${name}`;
      const label = make("label", { for: id }, text);
      label.style.minWidth = "6.5rem";
      const input = make("input", { type: "range", id, min, max, step });
      input.style.width = "9rem";
      const value = make("span", { "aria-hidden": "true" });
      value.style.cssText = "font-variant-numeric:tabular-nums;min-width:3rem";
      row.append(label, input, value);
      side.appendChild(row);
      inputs[name] = input;
      values[name] = value;
    }
    const readout = make("div", { class: "vaelib-kl-readout", "aria-live": "polite" });
    readout.style.cssText = "font-variant-numeric:tabular-nums;max-width:22rem;line-height:1.5;white-space:pre-line";
    side.appendChild(readout);
    root.append(canvas, side);
    el.appendChild(root);

    function draw() {
      const q = { mu: Number(model.get("mu")), sigma: Number(model.get("sigma")) };
      const p = { weights: model.get("p_weights"), means: model.get("p_means"), sigmas: model.get("p_sigmas") };
      const [lo, hi] = model.get("xlim") || [-6, 6];
      for (const name of ["mu", "sigma"]) {
        if (Number(inputs[name].value) !== q[name]) inputs[name].value = String(q[name]);
        values[name].textContent = q[name].toFixed(2);
        inputs[name].setAttribute("aria-valuetext", q[name].toFixed(2));
      }
      const kl = klQuadrature(q, p, model.get("grid_points") || 2001);

      const xs = Array.from({ length: 501 }, (_, i) => lo + (hi - lo) * i / 500);
      const ps = xs.map((x) => Math.exp(logMixture(x, p))), qs = xs.map((x) => Math.exp(logNormal(x, q.mu, q.sigma)));
      const ymax = Math.max(...ps, ...qs) * 1.08;
      const px = (v) => box.x + (v - lo) / (hi - lo) * box.w;
      const py = (v) => box.y + box.h - v / ymax * box.h;

      const dpr = window.devicePixelRatio || 1;
      canvas.width = Math.round(W * dpr);
      canvas.height = Math.round(H * dpr);
      const ctx = canvas.getContext("2d");
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(0, 0, W, H);
      // p filled, q as a line.
      ctx.beginPath();
      ctx.moveTo(px(lo), py(0));
      xs.forEach((x, i) => ctx.lineTo(px(x), py(ps[i])));
      ctx.lineTo(px(hi), py(0));
      ctx.closePath();
      ctx.globalAlpha = 0.3;
      ctx.fillStyle = CP;
      ctx.fill();
      ctx.globalAlpha = 1;
      for (const [ys, c] of [[ps, CP], [qs, CQ]]) {
        ctx.beginPath();
        xs.forEach((x, i) => (i ? ctx.lineTo(px(x), py(ys[i])) : ctx.moveTo(px(x), py(ys[i]))));
        ctx.strokeStyle = c;
        ctx.lineWidth = 2;
        ctx.stroke();
      }
      // Axes, ticks, labels, legend.
      ctx.strokeStyle = "#333333";
      ctx.lineWidth = 1;
      ctx.strokeRect(box.x, box.y, box.w, box.h);
      ctx.fillStyle = "#222222";
      ctx.font = "11px sans-serif";
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      for (let t = Math.ceil(lo); t <= hi; t++) {
        ctx.fillRect(px(t) - 0.5, box.y + box.h, 1, 3);
        ctx.fillText(String(t), px(t), box.y + box.h + 4);
      }
      ctx.fillText("x", box.x + box.w / 2, box.y + box.h + 19);
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      const step = ymax > 2 ? 1 : ymax > 0.8 ? 0.2 : 0.1;
      for (let t = 0; t <= ymax; t += step) {
        ctx.fillRect(box.x - 3, py(t) - 0.5, 3, 1);
        ctx.fillText(t.toFixed(1), box.x - 5, py(t));
      }
      ctx.save();
      ctx.translate(12, box.y + box.h / 2);
      ctx.rotate(-Math.PI / 2);
      ctx.textAlign = "center";
      ctx.fillText("density", 0, 0);
      ctx.restore();
      ctx.textAlign = "left";
      [[CP, "target p"], [CQ, `q = N(${q.mu.toFixed(2)}, ${q.sigma.toFixed(2)}\u00b2)`]].forEach(([c, t], i) => {
        ctx.fillStyle = c;
        ctx.fillRect(box.x + 8, box.y + 10 + 15 * i, 14, 3);
        ctx.fillStyle = "#222222";
        ctx.fillText(t, box.x + 26, box.y + 11 + 15 * i);
      });

      readout.textContent =
        `forward KL(p \u2016 q) = ${kl.forward.toFixed(3)} nats\n(large where q misses mass of p: mass-covering)\n` +
        `reverse KL(q \u2016 p) = ${kl.reverse.toFixed(3)} nats\n(large where q puts mass that p lacks: mode-seeking)`;
      canvas.setAttribute("aria-label",
        `Densities over x from ${lo} to ${hi}: the target p, a mixture of ${p.means.length} Gaussians with means ` +
        `${p.means.map((m) => m.toFixed(1)).join(", ")} (blue, filled), and q, a Gaussian with mean ${q.mu.toFixed(2)} ` +
        `and standard deviation ${q.sigma.toFixed(2)} (red). KL(p||q) = ${kl.forward.toFixed(3)} nats, ` +
        `KL(q||p) = ${kl.reverse.toFixed(3)} nats.`);
    }

    for (const name of ["mu", "sigma"]) {
      inputs[name].addEventListener("input", () => {
        model.set(name, Number(inputs[name].value));
        model.save_changes();
        draw();   // local redraw: works on a static page with no kernel
      });
    }
    draw();
    const events = ["mu", "sigma", "p_weights", "p_means", "p_sigmas", "xlim", "grid_points"].map((n) => `change:${n}`);
    events.forEach((ev) => model.on(ev, draw));
    return () => events.forEach((ev) => model.off(ev, draw));
  },
};
