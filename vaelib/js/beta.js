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
let counter = 0;

export function bytesFromBase64(s) {
  const bin = atob(s || "");
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function betaPoint({ betas, recon, kl, active, kl_dims }, k) {
  // The numbers printed for VAE k: beta, the two terms, the beta = 1 negative ELBO, the beta-weighted loss, active units.
  return { beta: betas[k], recon: recon[k], kl: kl[k], negElbo: recon[k] + kl[k], loss: recon[k] + betas[k] * kl[k],
           active: active[k], latentDim: kl_dims[k].length };
}

function make(tag, attrs = {}, text = null) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== null) e.textContent = text;
  return e;
}

const fmtBeta = (b) => (b >= 1 || b === 0 ? String(+b.toFixed(2)) : String(+b.toPrecision(2)));

function niceTicks(lo, hi, n = 5) {
  const span = hi - lo || 1, step0 = span / n, mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= step0);
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) out.push(+t.toFixed(10));
  return out;
}

export default {
  render({ model, el }) {
    const uid = `vaelib-beta-${++counter}-${Math.random().toString(36).slice(2, 8)}`;
    const root = make("div", { "data-vaelib-widget": "beta", class: "vaelib-beta" });
    root.style.cssText = "display:flex;flex-direction:column;gap:0.5rem;font-family:inherit;color:inherit";
    const row = make("div");
    row.style.cssText = "display:flex;align-items:center;gap:0.5rem;flex-wrap:wrap";
    const id = `${uid}-index`;
    const label = make("label", { for: id }, "weight \u03b2 of the KL term");
    const input = make("input", { type: "range", id, min: "0", step: "1" });
    input.style.width = "12rem";
    const value = make("output", { for: id });
    value.style.cssText = "font-variant-numeric:tabular-nums;min-width:3rem";
    row.append(label, input, value);
    const readout = make("div", { class: "vaelib-beta-readout", "aria-live": "polite" });
    readout.style.cssText = "font-variant-numeric:tabular-nums";
    const canvas = make("canvas", { role: "img" });
    canvas.style.cssText = "display:block;max-width:100%";
    root.append(row, readout, canvas);
    el.appendChild(root);

    let images = new Uint8Array(0), inputs = new Uint8Array(0);
    const parse = () => {
      images = bytesFromBase64(model.get("images"));
      inputs = bytesFromBase64(model.get("inputs"));
    };

    function axes(ctx, box, xt, yt, X, Y, xlabel, ylabel) {
      ctx.strokeStyle = "#444444";
      ctx.lineWidth = 1;
      ctx.strokeRect(box.x, box.y, box.w, box.h);
      ctx.fillStyle = "#222222";
      ctx.font = "11px sans-serif";
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      for (const t of xt) ctx.fillText(String(t), X(t), box.y + box.h + 3);
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      for (const t of yt) ctx.fillText(String(t), box.x - 4, Y(t));
      ctx.font = "12px sans-serif";
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      ctx.fillText(xlabel, box.x + box.w / 2, box.y + box.h + 17);
      ctx.save();
      ctx.translate(box.x - 42, box.y + box.h / 2);
      ctx.rotate(-Math.PI / 2);
      ctx.fillText(ylabel, 0, 0);
      ctx.restore();
    }

    function draw() {
      const st = { betas: model.get("betas"), recon: model.get("recon"), kl: model.get("kl"),
                   active: model.get("active"), kl_dims: model.get("kl_dims") };
      const dimActive = model.get("dim_active") || [];
      const F = st.betas.length, k = Math.max(0, Math.min(F - 1, model.get("index")));
      const pt = betaPoint(st, k);
      input.max = String(F - 1);
      if (Number(input.value) !== k) input.value = String(k);
      input.setAttribute("aria-valuetext", `\u03b2 = ${fmtBeta(pt.beta)}`);
      value.textContent = `\u03b2 = ${fmtBeta(pt.beta)}`;
      readout.textContent = `\u03b2 = ${fmtBeta(pt.beta)}: reconstruction ${pt.recon.toFixed(1)} nats + KL ` +
        `${pt.kl.toFixed(1)} nats = negative ELBO ${pt.negElbo.toFixed(1)} nats per test image; ` +
        `${pt.active} of ${pt.latentDim} latent units active.`;

      const N = model.get("n_images"), H = model.get("height"), W = model.get("width"), SC = 2, GAP = 4, LAB = 16;
      const cw = Math.max(560, N * (W * SC + GAP)), plotH = 230, ch = plotH + 3 * (H * SC + LAB) + 8;
      const dpr = window.devicePixelRatio || 1;
      canvas.width = Math.round(cw * dpr);
      canvas.height = Math.round(ch * dpr);
      canvas.style.width = `${cw}px`;
      canvas.style.height = `${ch}px`;
      const ctx = canvas.getContext("2d");
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(0, 0, cw, ch);

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
      const tile = document.createElement("canvas");
      tile.width = W;
      tile.height = H;
      const tctx = tile.getContext("2d");
      const base = k * 2 * N * H * W;
      const rows = [["test inputs", inputs, 0], ["reconstructions", images, base],
                    ["samples from the prior", images, base + N * H * W]];
      rows.forEach(([text, bytes, offset], r) => {
        const y0r = plotH + r * (H * SC + LAB);
        ctx.fillStyle = "#222222";
        ctx.font = "12px sans-serif";
        ctx.textAlign = "left";
        ctx.textBaseline = "top";
        ctx.fillText(text, 0, y0r + 1);
        for (let n = 0; n < N; n++) {
          const img = tctx.createImageData(W, H);
          for (let i = 0; i < H * W; i++) {
            const v = bytes[offset + n * H * W + i] || 0;
            img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v;
            img.data[4 * i + 3] = 255;
          }
          tctx.putImageData(img, 0, 0);
          ctx.imageSmoothingEnabled = false;
          ctx.drawImage(tile, n * (W * SC + GAP), y0r + LAB, W * SC, H * SC);
        }
      });
      canvas.setAttribute("aria-label",
        `Left: reconstruction term against KL term for the ${F} trained values of beta, beta = ${fmtBeta(pt.beta)} ` +
        `highlighted at KL ${pt.kl.toFixed(1)} and reconstruction ${pt.recon.toFixed(1)} nats. Right: bars of the KL ` +
        `of each of the ${D} latent dimensions, ${pt.active} active. Below: ${N} test digits, their reconstructions ` +
        `and ${N} samples from the prior for this beta.`);
    }

    input.addEventListener("input", () => {
      model.set("index", Number(input.value));
      model.save_changes();
      draw();   // local redraw: works on a static page with no kernel
    });

    parse();
    draw();
    const onData = () => { parse(); draw(); };
    const names = ["index", "betas", "recon", "kl", "active", "kl_dims", "dim_active", "n_images", "height", "width"];
    for (const n of names) model.on(`change:${n}`, draw);
    for (const n of ["images", "inputs"]) model.on(`change:${n}`, onData);
    return () => {
      for (const n of names) model.off(`change:${n}`, draw);
      for (const n of ["images", "inputs"]) model.off(`change:${n}`, onData);
    };
  },
};
