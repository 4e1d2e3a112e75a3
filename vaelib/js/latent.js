// Latent explorer: move a point z = (z1, z2) in a 2-D latent plane and see the decoder's image.
//
// The decoder runs here, in the browser, from weights embedded in the widget's state (so it works on the book's static
// page with no kernel). State (all synced from Python, see vaelib.widgets.LatentExplorer):
//   layers:  [{rows, cols, weight, bias}, ...]  one Linear layer each, torch layout W (rows x cols), row-major,
//            weight and bias as base64 little-endian floats of type `dtype` ("float32" or "float16").
//   dtype:   "float32" | "float16";  output: "sigmoid" (Bernoulli logits -> means) | "identity" (clipped to [0, 1]).
//   image_shape: [H, W];  z1, z2: the current point;  extent: the plane shows [-extent, extent]^2.
//   points:  base64 float32 (N*2, interleaved z1, z2) codes drawn behind, with `labels` (list of ints) and
//            `label_names` (list of strings) for their colours.  Empty string: no background.
// Decoding: h = x; for each layer h = W h + b, with ReLU between layers; the last layer's output goes through `output`.

const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];   // matplotlib's tab10, as in vaelib.plot
let counter = 0;

function bytesFromBase64(s) {
  const bin = atob(s || "");
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

function halfToFloat(h) {
  // IEEE 754 binary16 -> number (handles subnormals, infinities and NaN).
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
  if (e === 0) return s * f * Math.pow(2, -24);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * Math.pow(2, e - 15);
}

export function floatsFromBase64(s, dtype) {
  const bytes = bytesFromBase64(s);
  const view = new DataView(bytes.buffer);
  if (dtype === "float16") {
    const out = new Float32Array(bytes.length / 2);
    for (let i = 0; i < out.length; i++) out[i] = halfToFloat(view.getUint16(2 * i, true));
    return out;
  }
  const out = new Float32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = view.getFloat32(4 * i, true);
  return out;
}

export function parseLayers(layers, dtype) {
  return (layers || []).map((l) => ({
    rows: l.rows, cols: l.cols,
    W: floatsFromBase64(l.weight, dtype), b: floatsFromBase64(l.bias, dtype),
  }));
}

export function decode(net, z, output) {
  // The MLP forward pass, one matrix-vector product per layer.
  let h = Float64Array.from(z);
  net.forEach((layer, k) => {
    const { rows, cols, W, b } = layer;
    const out = new Float64Array(rows);
    for (let i = 0; i < rows; i++) {
      let acc = b[i];
      const off = i * cols;
      for (let j = 0; j < cols; j++) acc += W[off + j] * h[j];
      out[i] = k < net.length - 1 ? Math.max(acc, 0) : acc;    // ReLU between layers, none after the last
    }
    h = out;
  });
  return output === "identity"
    ? h.map((v) => Math.min(1, Math.max(0, v)))
    : h.map((v) => 1 / (1 + Math.exp(-v)));
}

function el_(tag, attrs = {}, text = null) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== null) e.textContent = text;
  return e;
}

export default {
  render({ model, el }) {
    const uid = `vaelib-latent-${++counter}-${Math.random().toString(36).slice(2, 8)}`;
    const PLANE = 300, PAD = 34, TOP = 8, RIGHT = 12, IMG = 196;      // CSS pixels
    const CW = PAD + PLANE + RIGHT, CH = TOP + PLANE + PAD;

    const root = el_("div", { "data-vaelib-widget": "latent", class: "vaelib-latent" });
    root.style.cssText = "display:flex;flex-wrap:wrap;gap:1.25rem;align-items:flex-start;font-family:inherit;color:inherit";

    // The latent plane.
    const left = el_("div");
    const plane = el_("canvas", { role: "img", width: CW, height: CH });
    plane.style.cssText = `width:${CW}px;height:${CH}px;cursor:crosshair;touch-action:none;display:block`;
    left.appendChild(plane);
    const legend = el_("div", { class: "vaelib-latent-legend" });
    legend.style.cssText = "display:flex;flex-wrap:wrap;gap:0.2rem 0.6rem;max-width:346px;font-size:0.85rem;margin-top:0.3rem";
    left.appendChild(legend);

    // The decoded image and the controls.
    const right = el_("div");
    right.style.cssText = "display:flex;flex-direction:column;gap:0.5rem";
    const shape = model.get("image_shape") || [28, 28];
    const [H, W] = shape.length === 3 ? shape.slice(1) : shape;
    const image = el_("canvas", { role: "img", width: W, height: H });
    image.style.cssText = `width:${IMG}px;height:${Math.round(IMG * H / W)}px;image-rendering:pixelated;` +
      "image-rendering:crisp-edges;border:1px solid #555;background:#000";
    right.appendChild(image);

    const sliders = {};
    for (const name of ["z1", "z2"]) {
      const row = el_("div");
      row.style.cssText = "display:flex;align-items:center;gap:0.5rem";
      const id = `${uid}-${name}`;
      const label = el_("label", { for: id }, name === "z1" ? "z\u2081 (horizontal)" : "z\u2082 (vertical)");
      label.style.minWidth = "7.5rem";
      const input = el_("input", { type: "range", id, step: "0.01" });
      input.style.width = "10rem";
      row.append(label, input);
      right.appendChild(row);
      sliders[name] = input;
    }
    const readout = el_("div", { class: "vaelib-latent-readout", "aria-live": "polite" });
    readout.style.cssText = "font-variant-numeric:tabular-nums";
    right.appendChild(readout);
    root.append(left, right);
    el.appendChild(root);

    let net = [], points = new Float32Array(0), labels = [];
    const parse = () => { net = parseLayers(model.get("layers"), model.get("dtype")); };
    const parsePoints = () => {
      points = model.get("points") ? floatsFromBase64(model.get("points"), "float32") : new Float32Array(0);
      labels = model.get("labels") || [];
    };
    const extent = () => Math.max(1e-6, model.get("extent") || 3);
    const toPx = (v) => PAD + (v + extent()) / (2 * extent()) * PLANE;           // z1 -> x
    const toPy = (v) => TOP + (extent() - v) / (2 * extent()) * PLANE;                // z2 -> y (up is positive)

    function drawLegend() {
      legend.replaceChildren();
      const names = model.get("label_names") || [];
      const present = [...new Set(labels)].sort((a, b) => a - b);
      for (const k of present) {
        const item = el_("span");
        const sw = el_("span", { "aria-hidden": "true" });
        sw.style.cssText = `display:inline-block;width:0.7rem;height:0.7rem;border-radius:50%;margin-right:0.25rem;background:${COLORS[k % 10]}`;
        item.append(sw, document.createTextNode(names[k] !== undefined ? names[k] : String(k)));
        legend.appendChild(item);
      }
    }

    function drawPlane(z1, z2) {
      const dpr = window.devicePixelRatio || 1;
      if (plane.width !== Math.round(CW * dpr)) {
        plane.width = Math.round(CW * dpr);
        plane.height = Math.round(CH * dpr);
      }
      const ctx = plane.getContext("2d");
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, CW, CH);
      ctx.fillStyle = "#ffffff";
      ctx.fillRect(PAD, TOP, PLANE, PLANE);
      // Prior contours: the circles holding 39%, 86% and 99% of N(0, I)'s mass (radius 1, 2, 3).
      ctx.strokeStyle = "#bbbbbb";
      ctx.setLineDash([3, 3]);
      for (const r of [1, 2, 3]) {
        ctx.beginPath();
        ctx.ellipse(toPx(0), toPy(0), r / (2 * extent()) * PLANE, r / (2 * extent()) * PLANE, 0, 0, 2 * Math.PI);
        ctx.stroke();
      }
      ctx.setLineDash([]);
      // The encoded codes.
      ctx.save();
      ctx.beginPath();
      ctx.rect(PAD, TOP, PLANE, PLANE);
      ctx.clip();
      ctx.globalAlpha = 0.55;
      for (let i = 0; i < points.length / 2; i++) {
        ctx.fillStyle = COLORS[(labels[i] || 0) % 10];
        ctx.fillRect(toPx(points[2 * i]) - 1.5, toPy(points[2 * i + 1]) - 1.5, 3, 3);
      }
      ctx.globalAlpha = 1;
      // The current point.
      ctx.strokeStyle = "#000000";
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(toPx(z1), toPy(z2), 6, 0, 2 * Math.PI);
      ctx.stroke();
      ctx.strokeStyle = "#ffffff";
      ctx.lineWidth = 1;
      ctx.beginPath();
      ctx.arc(toPx(z1), toPy(z2), 8, 0, 2 * Math.PI);
      ctx.stroke();
      ctx.restore();
      // Axes and labels.
      ctx.strokeStyle = "#333333";
      ctx.strokeRect(PAD, TOP, PLANE, PLANE);
      ctx.fillStyle = "#222222";
      ctx.font = "11px sans-serif";
      const e = extent();
      const step = e > 4 ? 2 : 1;
      ctx.textAlign = "center";
      ctx.textBaseline = "top";
      for (let t = -Math.floor(e / step) * step; t <= e + 1e-9; t += step) {
        ctx.fillText(String(t), toPx(t), TOP + PLANE + 3);
        ctx.fillRect(toPx(t) - 0.5, TOP + PLANE, 1, 3);
      }
      ctx.textAlign = "right";
      ctx.textBaseline = "middle";
      for (let t = -Math.floor(e / step) * step; t <= e + 1e-9; t += step) {
        ctx.fillText(String(t), PAD - 5, toPy(t));
        ctx.fillRect(PAD - 3, toPy(t) - 0.5, 3, 1);
      }
      ctx.textAlign = "center";
      ctx.textBaseline = "bottom";
      ctx.fillText("z\u2081", PAD + PLANE / 2, CH);
      ctx.save();
      ctx.translate(10, TOP + PLANE / 2);
      ctx.rotate(-Math.PI / 2);
      ctx.textBaseline = "middle";
      ctx.fillText("z\u2082", 0, 0);
      ctx.restore();
    }

    function drawImage(z1, z2) {
      const ctx = image.getContext("2d");
      const data = ctx.createImageData(W, H);
      const p = net.length ? decode(net, [z1, z2], model.get("output")) : new Float64Array(W * H);
      for (let i = 0; i < W * H; i++) {
        const v = Math.round(255 * (p[i] || 0));
        data.data[4 * i] = data.data[4 * i + 1] = data.data[4 * i + 2] = v;
        data.data[4 * i + 3] = 255;
      }
      ctx.putImageData(data, 0, 0);
      let mean = 0;
      for (let i = 0; i < W * H; i++) mean += p[i] || 0;
      return mean / (W * H);
    }

    function draw() {
      const z1 = model.get("z1"), z2 = model.get("z2");
      const e = extent();
      for (const [name, v] of [["z1", z1], ["z2", z2]]) {
        const s = sliders[name];
        s.min = String(-e);
        s.max = String(e);
        if (document.activeElement !== s || Number(s.value) !== v) s.value = String(v);
        s.setAttribute("aria-valuetext", `${name} = ${v.toFixed(2)}`);
      }
      drawPlane(z1, z2);
      const ink = drawImage(z1, z2);
      const r = Math.hypot(z1, z2);
      readout.textContent = `z = (${z1.toFixed(2)}, ${z2.toFixed(2)}), distance from the origin ${r.toFixed(2)}`;
      plane.setAttribute("aria-label",
        `Latent plane from ${-e} to ${e} on both axes, with ${points.length / 2} encoded test digits coloured by ` +
        `label and dashed prior circles of radius 1, 2 and 3; the marked point is z = (${z1.toFixed(2)}, ${z2.toFixed(2)}).`);
      image.setAttribute("aria-label",
        `Decoded ${H} by ${W} image at z = (${z1.toFixed(2)}, ${z2.toFixed(2)}); mean pixel intensity ${ink.toFixed(3)}.`);
    }

    function setZ(z1, z2) {
      const e = extent();
      const clip = (v) => Math.round(Math.min(e, Math.max(-e, v)) * 100) / 100;
      model.set("z1", clip(z1));
      model.set("z2", clip(z2));
      model.save_changes();
      draw();   // local redraw: works on a static page with no kernel
    }

    for (const name of ["z1", "z2"]) {
      sliders[name].addEventListener("input", () => {
        const v = Number(sliders[name].value);
        if (name === "z1") setZ(v, model.get("z2")); else setZ(model.get("z1"), v);
      });
    }
    let dragging = false;
    const fromEvent = (ev) => {
      const rect = plane.getBoundingClientRect();
      const x = (ev.clientX - rect.left) * CW / rect.width;
      const y = (ev.clientY - rect.top) * CH / rect.height;
      const e = extent();
      setZ((x - PAD) / PLANE * 2 * e - e, e - (y - TOP) / PLANE * 2 * e);
    };
    plane.addEventListener("pointerdown", (ev) => {
      dragging = true;
      if (plane.setPointerCapture) { try { plane.setPointerCapture(ev.pointerId); } catch (_) { /* synthetic events */ } }
      fromEvent(ev);
    });
    plane.addEventListener("pointermove", (ev) => { if (dragging) fromEvent(ev); });
    const stop = () => { dragging = false; };
    plane.addEventListener("pointerup", stop);
    plane.addEventListener("pointercancel", stop);

    parse();
    parsePoints();
    drawLegend();
    draw();
    const onState = () => draw();
    const onLayers = () => { parse(); draw(); };
    const onPoints = () => { parsePoints(); drawLegend(); draw(); };
    model.on("change:z1", onState);
    model.on("change:z2", onState);
    model.on("change:extent", onState);
    model.on("change:layers", onLayers);
    model.on("change:dtype", onLayers);
    model.on("change:output", onState);
    model.on("change:points", onPoints);
    model.on("change:labels", onPoints);
    return () => {
      for (const [ev, f] of [["change:z1", onState], ["change:z2", onState], ["change:extent", onState],
                             ["change:layers", onLayers], ["change:dtype", onLayers], ["change:output", onState],
                             ["change:points", onPoints], ["change:labels", onPoints]]) model.off(ev, f);
    };
  },
};
