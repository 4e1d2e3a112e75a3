// beta-VAE explorer (chapter 7): one slider picks one of F VAEs trained with different beta; everything drawn was
// computed in Python beforehand and embedded in the page, so the widget responds on a static page with no kernel.
//
// Left: the trade-off plane, KL(q(z|x) || p(z)) against the reconstruction term -E_q[log p(x|z)] (nats per test image),
// one point per beta, the chosen one highlighted. Right: the KL of every latent dimension (nats) for the chosen beta,
// with the active units (Burda's criterion) filled. Below: test inputs, their reconstructions and prior samples.
// State (synced from Python, see vaelib.widgets.BetaExplorer):
//   betas, recon, kl (F numbers each); active (F integers); kl_dims (F lists of latent_dim numbers); dim_active (F lists
//   of 0/1); images: base64 uint8, F * 2 * N * H * W grey levels (per beta: N reconstructions, then N prior samples);
//   inputs: base64 uint8, N * H * W; n_images, height, width; index: the beta shown.

const CPT = "#1f77b4", CSEL = "#d62728";

export function betaPoint({ betas, recon, kl, active, kl_dims }, k) {
  // The numbers printed for VAE k: beta, the two terms, the beta = 1 negative ELBO, the beta-weighted loss, active units.
  return { beta: betas[k], recon: recon[k], kl: kl[k], negElbo: recon[k] + kl[k], loss: recon[k] + betas[k] * kl[k],
           active: active[k], latentDim: kl_dims[k].length };
}

const fmtBeta = (b) => (b >= 1 || b === 0 ? String(+b.toFixed(2)) : String(+b.toPrecision(2)));

export default {
  render({ model, el }) {
    const uid = uniqueId("beta");
    const root = widgetRoot("beta", { column: true });
    const { input, value } = sliderRow(root, { id: `${uid}-index`, label: "weight \u03b2 of the KL term", min: 0,
                                               step: 1, inputWidth: "12rem", wrap: true });
    const readout = readoutBox("vaelib-beta-readout");
    const canvas = figureCanvas();
    root.append(readout, canvas);
    el.appendChild(root);

    let images = new Uint8Array(0), inputs = new Uint8Array(0);
    const parse = () => {
      images = bytesFromBase64(model.get("images"));
      inputs = bytesFromBase64(model.get("inputs"));
    };

    const axes = (ctx, box, xt, yt, X, Y, xlabel, ylabel) =>
      drawAxes(ctx, box, { X, Y, xticks: xt, yticks: yt, xlabel, ylabel, ylabelX: box.x - 42 });

    function draw() {
      const st = { betas: model.get("betas"), recon: model.get("recon"), kl: model.get("kl"),
                   active: model.get("active"), kl_dims: model.get("kl_dims") };
      const dimActive = model.get("dim_active") || [];
      const F = st.betas.length, k = Math.max(0, Math.min(F - 1, model.get("index")));
      const pt = betaPoint(st, k);
      input.max = String(F - 1);
      syncSlider(input, value, k, `\u03b2 = ${fmtBeta(pt.beta)}`);
      readout.textContent = `\u03b2 = ${fmtBeta(pt.beta)}: reconstruction ${pt.recon.toFixed(1)} nats + KL ` +
        `${pt.kl.toFixed(1)} nats = negative ELBO ${pt.negElbo.toFixed(1)} nats per test image; ` +
        `${pt.active} of ${pt.latentDim} latent units active.`;

      const N = model.get("n_images"), H = model.get("height"), W = model.get("width"), SC = 2, GAP = 4, LAB = 16;
      const cw = Math.max(560, N * (W * SC + GAP)), plotH = 230, ch = plotH + 3 * (H * SC + LAB) + 8;
      const ctx = prepareCanvas(canvas, cw, ch);

      // (1) the trade-off plane
      const b1 = { x: 56, y: 8, w: 200, h: 180 };
      const kls = st.kl, recs = st.recon;
      const pad = (lo, hi) => { const d = (hi - lo) * 0.1 || 1; return [lo - d, hi + d]; };
      const [x0, x1] = pad(Math.min(...kls), Math.max(...kls)), [y0, y1] = pad(Math.min(...recs), Math.max(...recs));
      const X1 = (v) => b1.x + ((v - x0) / (x1 - x0)) * b1.w, Y1 = (v) => b1.y + b1.h - ((v - y0) / (y1 - y0)) * b1.h;
      axes(ctx, b1, niceTicks(x0, x1, 4).filter((t) => t >= x0 && t <= x1),
           niceTicks(y0, y1, 5).filter((t) => t >= y0 && t <= y1), X1, Y1, "KL (nats)", "reconstruction (nats)");
      ctx.strokeStyle = CPT;
      ctx.lineWidth = 1;
      ctx.beginPath();
      st.betas.forEach((_, i) => (i ? ctx.lineTo(X1(kls[i]), Y1(recs[i])) : ctx.moveTo(X1(kls[i]), Y1(recs[i]))));
      ctx.stroke();
      ctx.font = "10px sans-serif";
      ctx.textAlign = "left";
      ctx.textBaseline = "bottom";
      st.betas.forEach((b, i) => {
        ctx.fillStyle = i === k ? CSEL : CPT;
        ctx.beginPath();
        ctx.arc(X1(kls[i]), Y1(recs[i]), i === k ? 6 : 3.5, 0, 2 * Math.PI);
        ctx.fill();
        ctx.fillStyle = "#222222";
        ctx.fillText(`\u03b2=${fmtBeta(b)}`, X1(kls[i]) + 5, Y1(recs[i]) - 2);
      });

      // (2) KL per latent dimension, sorted from largest to smallest
      const dims = st.kl_dims[k], D = dims.length;
      const order = dims.map((v, j) => j).sort((a, b) => dims[b] - dims[a]);
      const top = Math.max(...st.kl_dims.map((d) => Math.max(...d)), 1e-9);
      const b2 = { x: 350, y: 8, w: Math.max(180, cw - 370), h: 180 };
      const yt = niceTicks(0, top, 4).filter((t) => t <= top);
      const Y2 = (v) => b2.y + b2.h - (v / top) * b2.h;
      const bw = b2.w / D;
      axes(ctx, b2, [], yt, null, Y2, "latent dimensions, sorted by KL", "KL per dimension (nats)");
      order.forEach((j, r) => {
        const on = (dimActive[k] || [])[j];
        ctx.fillStyle = on ? CPT : "#ffffff";
        ctx.strokeStyle = CPT;
        const x = b2.x + r * bw + 1, h = b2.y + b2.h - Y2(dims[j]);
        ctx.fillRect(x, Y2(dims[j]), Math.max(1, bw - 2), h);
        ctx.strokeRect(x, Y2(dims[j]), Math.max(1, bw - 2), h);
      });

      // (3) inputs, reconstructions and prior samples
      const base = k * 2 * N * H * W;
      drawImageRows(ctx, [["test inputs", inputs, 0], ["reconstructions", images, base],
                          ["samples from the prior", images, base + N * H * W]], N, H, W,
                    { y0: plotH, scale: SC, gap: GAP, caption: LAB });
      canvas.setAttribute("aria-label",
        `Left: reconstruction term against KL term for the ${F} trained values of beta, beta = ${fmtBeta(pt.beta)} ` +
        `highlighted at KL ${pt.kl.toFixed(1)} and reconstruction ${pt.recon.toFixed(1)} nats. Right: bars of the KL ` +
        `of each of the ${D} latent dimensions, ${pt.active} active. Below: ${N} test digits, their reconstructions ` +
        `and ${N} samples from the prior for this beta.`);
    }

    bindSlider(model, input, "index", draw);

    parse();
    draw();
    const onData = () => { parse(); draw(); };
    const offDraw = onChanges(model, ["index", "betas", "recon", "kl", "active", "kl_dims", "dim_active", "n_images",
                                      "height", "width"], draw);
    const offData = onChanges(model, ["images", "inputs"], onData);
    return () => { offDraw(); offData(); };
  },
};
