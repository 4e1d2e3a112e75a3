// Bayes' rule explorer: two classes y = 0, 1 with Gaussian likelihoods p(x|y) = N(x; mu_y, sigma_y^2) and a prior
// p(y=1) = prior. Moving a slider redraws, here in the browser (so it works on the book's static page, no kernel):
//   top panel:    the joint p(x, y) = p(x|y) p(y) for both classes, and the evidence p(x) = sum_y p(x, y) (dashed);
//   bottom panel: the posterior p(y=1|x) = p(x, y=1) / p(x), and p(y=0|x) = 1 - p(y=1|x);
//   a vertical line at the observed x, and a readout of every term of Bayes' rule there.
// State (synced from Python, see vaelib.widgets.BayesExplorer): prior, mu0, sigma0, mu1, sigma1, x, xlim [lo, hi],
// class_names [name0, name1].

const C0 = "#1f77b4", C1 = "#d62728";   // matplotlib's tab10 blue and red

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

// One panel's frame: box {x, y, w, h} in CSS pixels, data ranges xr, yr; returns the data -> pixel maps.
function frame(ctx, box, xr, yr, xlabel, ylabel, yticks) {
  const px = (v) => box.x + (v - xr[0]) / (xr[1] - xr[0]) * box.w;
  const py = (v) => box.y + box.h - (v - yr[0]) / (yr[1] - yr[0]) * box.h;
  const xticks = [];
  for (let t = Math.ceil(xr[0]); t <= xr[1]; t++) xticks.push(t);
  drawAxes(ctx, box, { X: px, Y: py, xticks, yticks, xlabel, ylabel, yfmt: (t) => t.toFixed(yr[1] < 1.5 ? 1 : 0) });
  return { px, py };
}

function curve(ctx, xs, ys, px, py, color, { fill = false, dash = [], width = 2 } = {}) {
  if (fill) fillUnder(ctx, xs, ys, px, py, color);
  polyline(ctx, xs, ys, px, py, color, { width, dash });
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
    const uid = uniqueId("bayes");
    const W = 520, H = 380, LEFT = 52, RIGHT = 10;
    const top = { x: LEFT, y: 10, w: W - LEFT - RIGHT, h: 150 };
    const bottom = { x: LEFT, y: 212, w: W - LEFT - RIGHT, h: 130 };

    const root = widgetRoot("bayes");
    const canvas = figureCanvas();
    const side = sidePanel("gap:0.35rem;min-width:16rem");
    const sliders = sliderTable(side, uid, SLIDERS, { labelWidth: "8.5rem", inputWidth: "8rem" });
    const readout = readoutBox("vaelib-bayes-readout", "max-width:22rem;line-height:1.4");
    side.appendChild(readout);
    root.append(canvas, side);
    el.appendChild(root);

    const state = () => Object.fromEntries(SLIDERS.map(([n]) => [n, Number(model.get(n))]));

    function draw() {
      const s = state();
      const [lo, hi] = model.get("xlim") || [-5, 5];
      const names = model.get("class_names") || ["y = 0", "y = 1"];
      sliders.x.input.min = String(lo);
      sliders.x.input.max = String(hi);
      for (const [name] of SLIDERS) syncSlider(sliders[name].input, sliders[name].value, s[name]);
      const xs = Array.from({ length: 401 }, (_, i) => lo + (hi - lo) * i / 400);
      const terms = xs.map((x) => bayes(x, s));
      const ymax = Math.max(...terms.map((t) => t.evidence)) * 1.08;

      const ctx = prepareCanvas(canvas, W, H);

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
      drawLegend(ctx, top.x + 8, top.y + 11, [[C0, `p(x, ${names[0]})`], [C1, `p(x, ${names[1]})`], ["#444444", "p(x)"]]);

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

    for (const [name] of SLIDERS) bindSlider(model, sliders[name].input, name, draw);
    draw();
    return onChanges(model, [...SLIDERS.map(([n]) => n), "xlim", "class_names"], draw);
  },
};
