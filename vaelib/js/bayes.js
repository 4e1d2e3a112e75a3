// Bayes' rule explorer: two classes y = 0, 1 with Gaussian likelihoods p(x|y) = N(x; mu_y, sigma_y^2) and a prior
// p(y=1) = prior. Moving a slider redraws, here in the browser (so it works on the book's static page, no kernel):
//   top panel:    the joint p(x, y) = p(x|y) p(y) for both classes, and the evidence p(x) = sum_y p(x, y) (dashed);
//   bottom panel: the posterior p(y=1|x) = p(x, y=1) / p(x), and p(y=0|x) = 1 - p(y=1|x);
//   a vertical line at the observed x, and a readout of every term of Bayes' rule there.
// State (synced from Python, see vaelib.widgets.BayesExplorer): prior, mu0, sigma0, mu1, sigma1, x, xlim [lo, hi],
// class_names [name0, name1].

const C0 = "#1f77b4", C1 = "#d62728";   // matplotlib's tab10 blue and red
let counter = 0;

export function normalPdf(x, mu, sigma) {
  const u = (x - mu) / sigma;
  return Math.exp(-0.5 * u * u) / (sigma * Math.sqrt(2 * Math.PI));
}

export function bayes(x, s) {
  // Every term of p(y=1|x) = p(x|y=1) p(y=1) / p(x) at one x, for state s = {prior, mu0, sigma0, mu1, sigma1}.
  const lik0 = normalPdf(x, s.mu0, s.sigma0), lik1 = normalPdf(x, s.mu1, s.sigma1);
  const joint0 = (1 - s.prior) * lik0, joint1 = s.prior * lik1;
  const evidence = joint0 + joint1;
  // In the far tails both joints underflow to 0; the ratio of log-joints is still defined: use it there.
  const post1 = evidence > 0 ? joint1 / evidence : 1 / (1 + Math.exp(
    Math.log(1 - s.prior) - Math.log(s.sigma0) - 0.5 * ((x - s.mu0) / s.sigma0) ** 2
    - Math.log(s.prior) + Math.log(s.sigma1) + 0.5 * ((x - s.mu1) / s.sigma1) ** 2));
  return { lik0, lik1, joint0, joint1, evidence, post1 };
}

function make(tag, attrs = {}, text = null) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== null) e.textContent = text;
  return e;
}

// One panel's frame: box {x, y, w, h} in CSS pixels, data ranges xr, yr; returns the data -> pixel maps.
function frame(ctx, box, xr, yr, xlabel, ylabel, yticks) {
  const px = (v) => box.x + (v - xr[0]) / (xr[1] - xr[0]) * box.w;
  const py = (v) => box.y + box.h - (v - yr[0]) / (yr[1] - yr[0]) * box.h;
  ctx.strokeStyle = "#333333";
  ctx.lineWidth = 1;
  ctx.strokeRect(box.x, box.y, box.w, box.h);
  ctx.fillStyle = "#222222";
  ctx.font = "11px sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (let t = Math.ceil(xr[0]); t <= xr[1]; t++) {
    ctx.fillRect(px(t) - 0.5, box.y + box.h, 1, 3);
    ctx.fillText(String(t), px(t), box.y + box.h + 4);
  }
  ctx.fillText(xlabel, box.x + box.w / 2, box.y + box.h + 17);
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const t of yticks) {
    ctx.fillRect(box.x - 3, py(t) - 0.5, 3, 1);
    ctx.fillText(t.toFixed(yr[1] < 1.5 ? 1 : 0), box.x - 5, py(t));
  }
  ctx.save();
  ctx.translate(12, box.y + box.h / 2);
  ctx.rotate(-Math.PI / 2);
  ctx.textAlign = "center";
  ctx.fillText(ylabel, 0, 0);
  ctx.restore();
  return { px, py };
}

function curve(ctx, xs, ys, px, py, color, { fill = false, dash = [], width = 2 } = {}) {
  ctx.beginPath();
  xs.forEach((x, i) => (i ? ctx.lineTo(px(x), py(ys[i])) : ctx.moveTo(px(x), py(ys[i]))));
  if (fill) {
    ctx.lineTo(px(xs[xs.length - 1]), py(0));
    ctx.lineTo(px(xs[0]), py(0));
    ctx.closePath();
    ctx.globalAlpha = 0.25;
    ctx.fillStyle = color;
    ctx.fill();
    ctx.globalAlpha = 1;
    ctx.beginPath();
    xs.forEach((x, i) => (i ? ctx.lineTo(px(x), py(ys[i])) : ctx.moveTo(px(x), py(ys[i]))));
  }
  ctx.setLineDash(dash);
  ctx.strokeStyle = color;
  ctx.lineWidth = width;
  ctx.stroke();
  ctx.setLineDash([]);
}

const SLIDERS = [
  // name, label, min, max, step
  ["prior", "prior p(y=1)", 0.01, 0.99, 0.01],
  ["mu0", "mean of p(x|y=0)", -4, 4, 0.1],
  ["sigma0", "std of p(x|y=0)", 0.2, 3, 0.05],
  ["mu1", "mean of p(x|y=1)", -4, 4, 0.1],
  ["sigma1", "std of p(x|y=1)", 0.2, 3, 0.05],
  ["x", "observed x", -5, 5, 0.05],
];

export default {
  render({ model, el }) {
    const uid = `vaelib-bayes-${++counter}-${Math.random().toString(36).slice(2, 8)}`;
    const W = 520, H = 380, LEFT = 52, RIGHT = 10;
    const top = { x: LEFT, y: 10, w: W - LEFT - RIGHT, h: 150 };
    const bottom = { x: LEFT, y: 212, w: W - LEFT - RIGHT, h: 130 };

    const root = make("div", { "data-vaelib-widget": "bayes", class: "vaelib-bayes" });
    root.style.cssText = "display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-start;font-family:inherit;color:inherit";
    const canvas = make("canvas", { role: "img", width: W, height: H });
    canvas.style.cssText = `width:${W}px;height:${H}px;max-width:100%;display:block`;
    const side = make("div");
    side.style.cssText = "display:flex;flex-direction:column;gap:0.35rem;min-width:16rem";
    const inputs = {}, values = {};
    for (const [name, text, min, max, step] of SLIDERS) {
      const row = make("div");
      row.style.cssText = "display:flex;align-items:center;gap:0.5rem";
      const id = `${uid}-${name}`;
      const label = make("label", { for: id }, text);
      label.style.minWidth = "8.5rem";
      const input = make("input", { type: "range", id, min, max, step });
      input.style.width = "8rem";
      const value = make("span", { "aria-hidden": "true" });
      value.style.cssText = "font-variant-numeric:tabular-nums;min-width:3rem";
      row.append(label, input, value);
      side.appendChild(row);
      inputs[name] = input;
      values[name] = value;
    }
    const readout = make("div", { class: "vaelib-bayes-readout", "aria-live": "polite" });
    readout.style.cssText = "font-variant-numeric:tabular-nums;max-width:22rem;line-height:1.4";
    side.appendChild(readout);
    root.append(canvas, side);
    el.appendChild(root);

    const state = () => Object.fromEntries(SLIDERS.map(([n]) => [n, Number(model.get(n))]));

    function draw() {
      const s = state();
      const [lo, hi] = model.get("xlim") || [-5, 5];
      const names = model.get("class_names") || ["y = 0", "y = 1"];
      inputs.x.min = String(lo);
      inputs.x.max = String(hi);
      for (const [name] of SLIDERS) {
        if (Number(inputs[name].value) !== s[name]) inputs[name].value = String(s[name]);
        values[name].textContent = s[name].toFixed(2);
        inputs[name].setAttribute("aria-valuetext", s[name].toFixed(2));
      }
      const xs = Array.from({ length: 401 }, (_, i) => lo + (hi - lo) * i / 400);
      const terms = xs.map((x) => bayes(x, s));
      const ymax = Math.max(...terms.map((t) => t.evidence)) * 1.08;

      const dpr = window.devicePixelRatio || 1;
      canvas.width = Math.round(W * dpr);
      canvas.height = Math.round(H * dpr);
      const ctx = canvas.getContext("2d");
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(0, 0, W, H);

      const step = ymax > 1 ? 0.5 : ymax > 0.4 ? 0.2 : 0.1;
      const ticks = Array.from({ length: Math.floor(ymax / step) + 1 }, (_, i) => i * step);
      let m = frame(ctx, top, [lo, hi], [0, ymax], "x", "p(x, y)", ticks);
      curve(ctx, xs, terms.map((t) => t.joint0), m.px, m.py, C0, { fill: true });
      curve(ctx, xs, terms.map((t) => t.joint1), m.px, m.py, C1, { fill: true });
      curve(ctx, xs, terms.map((t) => t.evidence), m.px, m.py, "#444444", { dash: [5, 4], width: 1.5 });
      ctx.strokeStyle = "#000000";
      ctx.beginPath();
      ctx.moveTo(m.px(s.x), top.y);
      ctx.lineTo(m.px(s.x), top.y + top.h);
      ctx.stroke();
      // Legend.
      ctx.font = "11px sans-serif";
      ctx.textAlign = "left";
      ctx.textBaseline = "middle";
      [[C0, `p(x, ${names[0]})`], [C1, `p(x, ${names[1]})`], ["#444444", "p(x)"]].forEach(([c, t], i) => {
        ctx.fillStyle = c;
        ctx.fillRect(top.x + 8, top.y + 10 + 14 * i, 14, 3);
        ctx.fillStyle = "#222222";
        ctx.fillText(t, top.x + 26, top.y + 11 + 14 * i);
      });

      m = frame(ctx, bottom, [lo, hi], [0, 1], "x", "p(y | x)", [0, 0.5, 1]);
      curve(ctx, xs, terms.map((t) => 1 - t.post1), m.px, m.py, C0);
      curve(ctx, xs, terms.map((t) => t.post1), m.px, m.py, C1);
      const here = bayes(s.x, s);
      ctx.strokeStyle = "#000000";
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.moveTo(m.px(s.x), bottom.y);
      ctx.lineTo(m.px(s.x), bottom.y + bottom.h);
      ctx.stroke();
      for (const [v, c] of [[here.post1, C1], [1 - here.post1, C0]]) {
        ctx.fillStyle = c;
        ctx.beginPath();
        ctx.arc(m.px(s.x), m.py(v), 4, 0, 2 * Math.PI);
        ctx.fill();
      }

      const f = (v) => (v >= 1e-3 || v === 0 ? v.toFixed(3) : v.toExponential(1));
      readout.textContent =
        `At x = ${s.x.toFixed(2)}: likelihoods p(x|${names[0]}) = ${f(here.lik0)}, p(x|${names[1]}) = ${f(here.lik1)}; ` +
        `evidence p(x) = ${f(here.evidence)}. Prior p(${names[1]}) = ${s.prior.toFixed(2)} \u2192 ` +
        `posterior p(${names[1]}|x) = ${f(here.post1)}, p(${names[0]}|x) = ${f(1 - here.post1)}.`;
      canvas.setAttribute("aria-label",
        `Two panels over x from ${lo} to ${hi}. Top: the joint densities p(x, y) of ${names[0]} (blue, mean ` +
        `${s.mu0.toFixed(1)}, std ${s.sigma0.toFixed(2)}, weight ${(1 - s.prior).toFixed(2)}) and ${names[1]} ` +
        `(red, mean ${s.mu1.toFixed(1)}, std ${s.sigma1.toFixed(2)}, weight ${s.prior.toFixed(2)}) and their sum p(x). ` +
        `Bottom: the posterior of each class; at x = ${s.x.toFixed(2)} p(${names[1]}|x) = ${f(here.post1)}.`);
    }

    for (const [name] of SLIDERS) {
      inputs[name].addEventListener("input", () => {
        model.set(name, Number(inputs[name].value));
        model.save_changes();
        draw();   // local redraw: works on a static page with no kernel
      });
    }
    draw();
    const events = [...SLIDERS.map(([n]) => `change:${n}`), "change:xlim", "change:class_names"];
    events.forEach((ev) => model.on(ev, draw));
    return () => events.forEach((ev) => model.off(ev, draw));
  },
};
