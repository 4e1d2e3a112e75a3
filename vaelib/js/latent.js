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

export default {
  render({ model, el }) {
    const uid = uniqueId("latent");
    const PLANE = 300, PAD = 34, TOP = 8, RIGHT = 12, IMG = 196;      // CSS pixels
    const CW = PAD + PLANE + RIGHT, CH = TOP + PLANE + PAD;

    const root = widgetRoot("latent", { gap: "1.25rem" });

    // The latent plane.
    const left = make("div");
    const plane = figureCanvas("cursor:crosshair;touch-action:none");
    left.appendChild(plane);
    const legend = make("div", { class: "vaelib-latent-legend" });
    legend.style.cssText = "display:flex;flex-wrap:wrap;gap:0.2rem 0.6rem;max-width:346px;font-size:0.85rem;margin-top:0.3rem";
    left.appendChild(legend);

    // The decoded image and the controls.
    const right = sidePanel("gap:0.5rem");
    const shape = model.get("image_shape") || [28, 28];
    const [H, W] = shape.length === 3 ? shape.slice(1) : shape;
    const image = make("canvas", { role: "img", width: W, height: H });
    image.style.cssText = `width:${IMG}px;height:${Math.round(IMG * H / W)}px;image-rendering:pixelated;` +
      "image-rendering:crisp-edges;border:1px solid #555;background:#000";
    right.appendChild(image);

    const sliders = {};
    for (const name of ["z1", "z2"]) {
      sliders[name] = sliderRow(right, { id: `${uid}-${name}`, step: 0.01, labelWidth: "7.5rem", inputWidth: "10rem",
                                         label: name === "z1" ? "z\u2081 (horizontal)" : "z\u2082 (vertical)",
                                         showValue: false }).input;
    }
    const readout = readoutBox("vaelib-latent-readout");
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
    const drawLegend = () => classLegend(legend, labels, model.get("label_names") || []);

    function drawPlane(z1, z2) {
      const ctx = prepareCanvas(plane, CW, CH);
      const { X, Y } = drawLatentPlane(ctx, { x: PAD, y: TOP, side: PLANE }, extent(), points, labels);
      // The current point (clipped to the plane).
      ctx.save();
      ctx.beginPath();
      ctx.rect(PAD, TOP, PLANE, PLANE);
      ctx.clip();
      for (const [color, width, r] of [["#000000", 2, 6], ["#ffffff", 1, 8]]) {
        ctx.strokeStyle = color;
        ctx.lineWidth = width;
        ctx.beginPath();
        ctx.arc(X(z1), Y(z2), r, 0, 2 * Math.PI);
        ctx.stroke();
      }
      ctx.restore();
    }

    function drawImage(z1, z2) {
      const p = net.length ? decode(net, [z1, z2], model.get("output")) : new Float64Array(W * H);
      drawGrey(image.getContext("2d"), p, 0, H, W, 0, 0, 1, 255);
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
    const offs = [onChanges(model, ["z1", "z2", "extent", "output"], () => draw()),
                  onChanges(model, ["layers", "dtype"], () => { parse(); draw(); }),
                  onChanges(model, ["points", "labels", "label_names"], () => { parsePoints(); drawLegend(); draw(); })];
    return () => offs.forEach((off) => off());
  },
};
