// Image slider: a slider picks one of F precomputed frames, each a row of N small greyscale images.
//
// Used in chapter 2 for reconstructions against code size, and for decodes along one latent unit. All the images are
// embedded in the widget's state, so the widget works on the book's static page with no kernel.
// State (synced from Python, see vaelib.widgets.ImageSliderExplorer):
//   frames:  base64 uint8, F * N * H * W grey levels (0 = black, 255 = white), frame-major then image then row.
//   n_frames, n_images, height, width;  index: the frame shown.
//   reference: base64 uint8, N * H * W (e.g. the inputs), drawn above the frame; "" for none.
//   frame_labels: F strings, the readout for each frame;  slider_label, reference_label, frame_row_label, description.

let counter = 0;

export function bytesFromBase64(s) {
  const bin = atob(s || "");
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function el_(tag, attrs = {}, text = null) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== null) e.textContent = text;
  return e;
}

export default {
  render({ model, el }) {
    const uid = `vaelib-imageslider-${++counter}-${Math.random().toString(36).slice(2, 8)}`;
    const SCALE = 2, GAP = 4, LABEL = 18;       // CSS pixels per image pixel, between images, above each row

    const root = el_("div", { "data-vaelib-widget": "imageslider", class: "vaelib-imageslider" });
    root.style.cssText = "display:flex;flex-direction:column;gap:0.5rem;font-family:inherit;color:inherit";
    const row = el_("div");
    row.style.cssText = "display:flex;align-items:center;gap:0.5rem;flex-wrap:wrap";
    const id = `${uid}-index`;
    const label = el_("label", { for: id });
    const input = el_("input", { type: "range", id, min: "0", step: "1" });
    input.style.width = "14rem";
    const readout = el_("span", { class: "vaelib-imageslider-readout", "aria-live": "polite" });
    readout.style.cssText = "font-variant-numeric:tabular-nums";
    row.append(label, input, readout);
    const canvas = el_("canvas", { role: "img" });
    canvas.style.cssText = "image-rendering:pixelated;image-rendering:crisp-edges;display:block;max-width:100%";
    root.append(row, canvas);
    el.appendChild(root);

    let frames = new Uint8Array(0), reference = new Uint8Array(0);
    const parse = () => {
      frames = bytesFromBase64(model.get("frames"));
      reference = bytesFromBase64(model.get("reference"));
    };

    function draw() {
      const F = model.get("n_frames"), N = model.get("n_images"), H = model.get("height"), W = model.get("width");
      const k = Math.max(0, Math.min(F - 1, model.get("index")));
      const labels = model.get("frame_labels") || [];
      label.textContent = model.get("slider_label") || "frame";
      input.max = String(F - 1);
      if (Number(input.value) !== k) input.value = String(k);
      input.setAttribute("aria-valuetext", labels[k] || String(k));
      readout.textContent = labels[k] || "";

      const rows = reference.length ? [[model.get("reference_label"), reference, 0], [model.get("frame_row_label"), frames, k * N * H * W]]
                                    : [[model.get("frame_row_label"), frames, k * N * H * W]];
      const cw = N * W * SCALE + (N - 1) * GAP, ch = rows.length * (H * SCALE + LABEL);
      const dpr = window.devicePixelRatio || 1;
      canvas.width = Math.round(cw * dpr);
      canvas.height = Math.round(ch * dpr);
      canvas.style.width = `${cw}px`;
      canvas.style.height = `${ch}px`;
      const ctx = canvas.getContext("2d");
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.imageSmoothingEnabled = false;
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(0, 0, cw, ch);
      const tile = document.createElement("canvas");
      tile.width = W;
      tile.height = H;
      const tctx = tile.getContext("2d");
      rows.forEach(([text, bytes, offset], r) => {
        const y0 = r * (H * SCALE + LABEL);
        ctx.fillStyle = "#222222";
        ctx.font = "12px sans-serif";
        ctx.textBaseline = "top";
        ctx.fillText(text || "", 0, y0 + 2);
        for (let n = 0; n < N; n++) {
          const img = tctx.createImageData(W, H);
          for (let i = 0; i < H * W; i++) {
            const v = bytes[offset + n * H * W + i] || 0;
            img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v;
            img.data[4 * i + 3] = 255;
          }
          tctx.putImageData(img, 0, 0);
          ctx.drawImage(tile, n * (W * SCALE + GAP), y0 + LABEL, W * SCALE, H * SCALE);
        }
      });
      canvas.setAttribute("aria-label", `${model.get("description") || "Images"}: ${labels[k] || `frame ${k}`}.`);
    }

    input.addEventListener("input", () => {
      model.set("index", Number(input.value));
      model.save_changes();
      draw();   // local redraw: works on a static page with no kernel
    });

    parse();
    draw();
    const onData = () => { parse(); draw(); };
    const names = ["index", "frame_labels", "slider_label", "description", "reference_label", "frame_row_label"];
    for (const n of names) model.on(`change:${n}`, draw);
    for (const n of ["frames", "reference"]) model.on(`change:${n}`, onData);
    return () => {
      for (const n of names) model.off(`change:${n}`, draw);
      for (const n of ["frames", "reference"]) model.off(`change:${n}`, onData);
    };
  },
};
