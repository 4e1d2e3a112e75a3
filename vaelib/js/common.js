// What every widget's JavaScript shares: the element factory, the root and side-panel layout, labelled slider rows,
// canvases sized for the screen, axes, greyscale images, the latent plane, base64 data, MLP decoders embedded as
// base64 weights, and a point moved on a latent plane by sliders or by dragging.
//
// An anywidget module (`_esm`) is one self-contained string: it cannot import a file next to it. So
// vaelib.widgets._js(NAME) puts this file in front of js/NAME.js, and each widget's module begins with these
// definitions (a widget file must not define the same names). Nothing here touches global state beyond this module,
// and ids are unique per rendered view, so several widgets, or several views of one, can share a page.

// matplotlib's tab10, as in vaelib.plot: colour k % 10 for class k.
export const TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

let viewCount = 0;

// A DOM element with attributes and, optionally, text.
export function make(tag, attrs = {}, text = null) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== null) e.textContent = text;
  return e;
}

// An id prefix unique to one rendered view: `vaelib-NAME-<count>-<random>`.
export function uniqueId(name) {
  return `vaelib-${name}-${++viewCount}-${Math.random().toString(36).slice(2, 8)}`;
}

// A widget's root element. It carries data-vaelib-widget=NAME (the browser tests find widgets by it). Its children
// sit side by side and wrap (a figure, then a side panel); column: true stacks them instead.
export function widgetRoot(name, { column = false, gap = column ? "0.5rem" : "1rem" } = {}) {
  const root = make("div", { "data-vaelib-widget": name, class: `vaelib-${name}` });
  root.style.cssText = column
    ? `display:flex;flex-direction:column;gap:${gap};font-family:inherit;color:inherit`
    : `display:flex;flex-wrap:wrap;gap:${gap};align-items:flex-start;font-family:inherit;color:inherit`;
  return root;
}

// A column of controls and readouts beside a figure.
export function sidePanel(css = "") {
  const side = make("div");
  side.style.cssText = `display:flex;flex-direction:column;gap:0.4rem;${css}`;
  return side;
}

// A live text readout (announced to screen readers as it changes).
export function readoutBox(cls, css = "") {
  const r = make("div", { class: cls, "aria-live": "polite" });
  r.style.cssText = `font-variant-numeric:tabular-nums;${css}`;
  return r;
}

// A labelled slider: <label for=id>, <input type=range id=id> and, with showValue, an <output for=id> for its value.
// Appended to `parent`; returns {row, label, input, value}. labelWidth and inputWidth are CSS lengths.
export function sliderRow(parent, { id, label, min, max, step, labelWidth = null, inputWidth = "9rem",
                                    showValue = true, wrap = false }) {
  const row = make("div");
  row.style.cssText = `display:flex;align-items:center;gap:0.5rem${wrap ? ";flex-wrap:wrap" : ""}`;
  const lab = make("label", { for: id }, label);
  if (labelWidth) lab.style.minWidth = labelWidth;
  const attrs = { type: "range", id };
  for (const [k, v] of [["min", min], ["max", max], ["step", step]]) if (v !== undefined) attrs[k] = String(v);
  const input = make("input", attrs);
  input.style.width = inputWidth;
  row.append(lab, input);
  let value = null;
  if (showValue) {
    value = make("output", { for: id });
    value.style.cssText = "font-variant-numeric:tabular-nums;min-width:3rem";
    row.appendChild(value);
  }
  parent.appendChild(row);
  return { row, label: lab, input, value };
}

// One slider row per spec [name, label, min, max, step], ids `${uid}-${name}`, with the same options (sliderRow's);
// returns {name: {row, label, input, value}}.
export function sliderTable(parent, uid, specs, options = {}) {
  const out = {};
  for (const [name, label, min, max, step] of specs) {
    out[name] = sliderRow(parent, { ...options, id: `${uid}-${name}`, label, min, max, step });
  }
  return out;
}

// A canvas drawn as an image: role="img" (its aria-label is set by the widget as it draws).
export function figureCanvas(css = "") {
  const c = make("canvas", { role: "img" });
  c.style.cssText = `display:block;max-width:100%;${css}`;
  return c;
}

// Size `canvas` to w x h CSS pixels at the screen's pixel ratio; returns its 2-D context in CSS pixels, cleared to
// white, with an 11px font.
export function prepareCanvas(canvas, w, h) {
  const dpr = window.devicePixelRatio || 1;
  canvas.width = Math.round(w * dpr);
  canvas.height = Math.round(h * dpr);
  canvas.style.width = `${w}px`;
  canvas.style.height = `${h}px`;
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, w, h);
  ctx.font = "11px sans-serif";
  return ctx;
}

// About n round tick values covering [lo, hi] (steps of 1, 2 or 5 times a power of ten).
export function niceTicks(lo, hi, n = 5) {
  const span = hi - lo || 1, step0 = span / n, mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= step0);
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + 1e-9; t += step) out.push(+t.toFixed(10));
  return out;
}

// A plot frame: the box {x, y, w, h}, ticks at xticks / yticks (data values, placed by X and Y, labelled by xfmt /
// yfmt), the x label below and the y label turned upright at x = ylabelX.
export function drawAxes(ctx, box, { X = null, Y = null, xticks = [], yticks = [], xlabel = "", ylabel = "",
                                     xfmt = String, yfmt = String, ylabelX = 12 } = {}) {
  ctx.strokeStyle = "#333333";
  ctx.lineWidth = 1;
  ctx.setLineDash([]);
  ctx.strokeRect(box.x, box.y, box.w, box.h);
  ctx.fillStyle = "#222222";
  ctx.font = "11px sans-serif";
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (const t of X ? xticks : []) {
    ctx.fillRect(X(t) - 0.5, box.y + box.h, 1, 3);
    ctx.fillText(xfmt(t), X(t), box.y + box.h + 4);
  }
  if (xlabel) ctx.fillText(xlabel, box.x + box.w / 2, box.y + box.h + 18);
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const t of Y ? yticks : []) {
    ctx.fillRect(box.x - 3, Y(t) - 0.5, 3, 1);
    ctx.fillText(yfmt(t), box.x - 5, Y(t));
  }
  if (ylabel) {
    ctx.save();
    ctx.translate(ylabelX, box.y + box.h / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.textAlign = "center";
    ctx.fillText(ylabel, 0, 0);
    ctx.restore();
  }
}

// A polyline through (xs[i], ys[i]) in data coordinates.
export function polyline(ctx, xs, ys, X, Y, color, { width = 2, dash = [] } = {}) {
  ctx.beginPath();
  xs.forEach((x, i) => (i ? ctx.lineTo(X(x), Y(ys[i])) : ctx.moveTo(X(x), Y(ys[i]))));
  ctx.setLineDash(dash);
  ctx.strokeStyle = color;
  ctx.lineWidth = width;
  ctx.stroke();
  ctx.setLineDash([]);
}

// The area between the curve (xs[i], ys[i]) and y = 0, filled with a translucent colour.
export function fillUnder(ctx, xs, ys, X, Y, color, alpha = 0.25) {
  ctx.beginPath();
  ctx.moveTo(X(xs[0]), Y(0));
  xs.forEach((x, i) => ctx.lineTo(X(x), Y(ys[i])));
  ctx.lineTo(X(xs[xs.length - 1]), Y(0));
  ctx.closePath();
  ctx.globalAlpha = alpha;
  ctx.fillStyle = color;
  ctx.fill();
  ctx.globalAlpha = 1;
}

// A small legend inside a plot: one coloured dash and its text per entry [colour, text], from (x, y) down.
export function drawLegend(ctx, x, y, entries, spacing = 14) {
  ctx.font = "11px sans-serif";
  ctx.textAlign = "left";
  ctx.textBaseline = "middle";
  entries.forEach(([c, t], i) => {
    ctx.fillStyle = c;
    ctx.fillRect(x, y + spacing * i - 1, 14, 3);
    ctx.fillStyle = "#222222";
    ctx.fillText(t, x + 18, y + spacing * i);
  });
}

// One greyscale image of H x W pixels, values[offset + r * W + c] times `gain` giving 0 (black) .. 255 (white),
// drawn at (x, y) scaled by `scale` with crisp pixels.
export function drawGrey(ctx, values, offset, H, W, x, y, scale, gain = 1) {
  const tile = document.createElement("canvas");
  tile.width = W;
  tile.height = H;
  const tctx = tile.getContext("2d");
  const img = tctx.createImageData(W, H);
  for (let i = 0; i < H * W; i++) {
    const v = Math.round((values[offset + i] || 0) * gain);
    img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = v;
    img.data[4 * i + 3] = 255;
  }
  tctx.putImageData(img, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(tile, x, y, W * scale, H * scale);
}

// Rows of greyscale images under a caption each: rows = [[caption, values, offset], ...], n images of H x W per row.
export function drawImageRows(ctx, rows, n, H, W, { x0 = 0, y0 = 0, scale = 2, gap = 4, caption = 16, gain = 1 } = {}) {
  rows.forEach(([text, values, offset], r) => {
    const y = y0 + r * (H * scale + caption);
    ctx.fillStyle = "#222222";
    ctx.font = "12px sans-serif";
    ctx.textAlign = "left";
    ctx.textBaseline = "top";
    ctx.fillText(text || "", x0, y + 1);
    for (let k = 0; k < n; k++) drawGrey(ctx, values, offset + k * H * W, H, W, x0 + k * (W * scale + gap), y + caption, scale, gain);
  });
}

// The latent plane [-extent, extent]^2 in the square box {x, y, side}: white, dashed prior circles of radius 1, 2, 3
// (39%, 86% and 99% of N(0, I)'s mass), the points (interleaved z1, z2) coloured by label, ticks and the z1, z2
// labels. Returns the maps {X, Y} from latent coordinates to CSS pixels, for drawing on top.
export function drawLatentPlane(ctx, box, extent, points, labels, { alpha = 0.55, size = 3 } = {}) {
  const e = Math.max(1e-6, extent), S = box.side;
  const X = (v) => box.x + (v + e) / (2 * e) * S, Y = (v) => box.y + (e - v) / (2 * e) * S;
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(box.x, box.y, S, S);
  ctx.save();
  ctx.beginPath();
  ctx.rect(box.x, box.y, S, S);
  ctx.clip();
  ctx.strokeStyle = "#bbbbbb";
  ctx.lineWidth = 1;
  ctx.setLineDash([3, 3]);
  for (const r of [1, 2, 3]) {
    ctx.beginPath();
    ctx.arc(X(0), Y(0), r / (2 * e) * S, 0, 2 * Math.PI);
    ctx.stroke();
  }
  ctx.setLineDash([]);
  ctx.globalAlpha = alpha;
  for (let i = 0; i < points.length / 2; i++) {
    ctx.fillStyle = TAB10[(labels[i] || 0) % 10];
    ctx.fillRect(X(points[2 * i]) - size / 2, Y(points[2 * i + 1]) - size / 2, size, size);
  }
  ctx.globalAlpha = 1;
  ctx.restore();
  const step = e > 4 ? 2 : 1, ticks = [];
  for (let t = -Math.floor(e / step) * step; t <= e + 1e-9; t += step) ticks.push(t);
  drawAxes(ctx, { x: box.x, y: box.y, w: S, h: S }, { X, Y, xticks: ticks, yticks: ticks, xlabel: "z\u2081",
                                                       ylabel: "z\u2082", ylabelX: box.x - 24 });
  return { X, Y };
}

// A legend of class colours, into the element `legend`: one swatch and name per label present in `labels`.
export function classLegend(legend, labels, names = []) {
  legend.replaceChildren();
  for (const k of [...new Set(labels)].sort((a, b) => a - b)) {
    const item = make("span");
    const sw = make("span", { "aria-hidden": "true" });
    sw.style.cssText = `display:inline-block;width:0.7rem;height:0.7rem;border-radius:50%;margin-right:0.25rem;background:${TAB10[k % 10]}`;
    item.append(sw, document.createTextNode(names[k] !== undefined ? names[k] : String(k)));
    legend.appendChild(item);
  }
}

// The bytes of a base64 string.
export function bytesFromBase64(s) {
  const bin = atob(s || "");
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

// When the slider moves: set the model's `name` to toValue(its value), save, and redraw here (so the widget responds
// on a static page with no kernel).
export function bindSlider(model, input, name, redraw, toValue = Number) {
  input.addEventListener("input", () => {
    model.set(name, toValue(input.value));
    model.save_changes();
    redraw();
  });
}

// Show the model's value v on a slider (unless it is already there), in its <output> and to screen readers.
export function syncSlider(input, output, v, text = v.toFixed(2)) {
  if (Number(input.value) !== v) input.value = String(v);
  if (output) output.textContent = text;
  input.setAttribute("aria-valuetext", text);
}

// Listen to change:NAME for each name; returns the function that stops listening (render's clean-up).
export function onChanges(model, names, callback) {
  for (const n of names) model.on(`change:${n}`, callback);
  return () => { for (const n of names) model.off(`change:${n}`, callback); };
}

// ---- MLP decoders embedded as base64 weights (the latent and conditional explorers).
// layers: [{rows, cols, weight, bias}, ...], one Linear layer each, torch layout W (rows x cols), row-major, weight and
// bias as base64 little-endian floats of type dtype ("float32" or "float16").

// IEEE 754 binary16 -> number (handles subnormals, infinities and NaN).
function halfToFloat(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, f = h & 0x3ff;
  if (e === 0) return s * f * Math.pow(2, -24);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * Math.pow(2, e - 15);
}

// The little-endian floats of a base64 string, as a Float32Array.
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

// The synced layers as [{rows, cols, W, b}] with Float32Array weights.
export function parseLayers(layers, dtype) {
  return (layers || []).map((l) => ({
    rows: l.rows, cols: l.cols,
    W: floatsFromBase64(l.weight, dtype), b: floatsFromBase64(l.bias, dtype),
  }));
}

// The MLP forward pass of input z (an array), one matrix-vector product per layer in float64: ReLU between the
// layers, none after the last; then output "sigmoid" (Bernoulli logits -> means) or "identity" (clipped to [0, 1]).
export function decode(net, z, output) {
  let h = Float64Array.from(z);
  net.forEach((layer, k) => {
    const { rows, cols, W, b } = layer;
    const out = new Float64Array(rows);
    for (let i = 0; i < rows; i++) {
      let acc = b[i];
      const off = i * cols;
      for (let j = 0; j < cols; j++) acc += W[off + j] * h[j];
      out[i] = k < net.length - 1 ? Math.max(acc, 0) : acc;
    }
    h = out;
  });
  return output === "identity"
    ? h.map((v) => Math.min(1, Math.max(0, v)))
    : h.map((v) => 1 / (1 + Math.exp(-v)));
}

// The mean of values[0 .. n-1] (a decoded image's ink).
export function meanOf(values, n) {
  let s = 0;
  for (let i = 0; i < n; i++) s += values[i] || 0;
  return s / n;
}

// A canvas for one H x W image shown `size` CSS pixels wide, crisp pixels on black.
export function imageCanvas(H, W, size, cls = "") {
  const c = make("canvas", { role: "img", width: W, height: H, class: cls });
  c.style.cssText = `width:${size}px;height:${Math.round(size * H / W)}px;image-rendering:pixelated;` +
    "image-rendering:crisp-edges;border:1px solid #555;background:#000";
  return c;
}

// ---- A point z = (z1, z2) moved on a latent plane (the model's z1, z2, extent), by two sliders or by dragging.
// geometry: {CW, CH, PAD, TOP, PLANE}: the plane canvas is CW x CH CSS pixels, the plane the square
// {x: PAD, y: TOP, side: PLANE}. latentPoint builds the two labelled sliders into `panel` and wires them and the
// canvas `plane`; every change sets the model, saves and calls redraw() (so it works on a static page).
// Returns {sync(), mark(ctx, X, Y)}: sync() puts the model's point on the sliders (call it when drawing), mark()
// rings the point on the drawn plane.
export function latentPoint(model, panel, plane, uid, geometry, redraw) {
  const { CW, CH, PAD, TOP, PLANE } = geometry;
  const extent = () => Math.max(1e-6, model.get("extent") || 3);
  const sliders = {};
  for (const name of ["z1", "z2"]) {
    sliders[name] = sliderRow(panel, { id: `${uid}-${name}`, step: 0.01, labelWidth: "7.5rem", inputWidth: "10rem",
                                       label: name === "z1" ? "z\u2081 (horizontal)" : "z\u2082 (vertical)",
                                       showValue: false }).input;
  }
  function setZ(z1, z2) {
    const e = extent();
    const clip = (v) => Math.round(Math.min(e, Math.max(-e, v)) * 100) / 100;
    model.set("z1", clip(z1));
    model.set("z2", clip(z2));
    model.save_changes();
    redraw();
  }
  sliders.z1.addEventListener("input", () => setZ(Number(sliders.z1.value), model.get("z2")));
  sliders.z2.addEventListener("input", () => setZ(model.get("z1"), Number(sliders.z2.value)));
  let dragging = false;
  const fromEvent = (ev) => {
    const rect = plane.getBoundingClientRect();
    const x = (ev.clientX - rect.left) * CW / rect.width, y = (ev.clientY - rect.top) * CH / rect.height;
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
  return {
    sync() {
      const e = extent();
      for (const name of ["z1", "z2"]) {
        const s = sliders[name], v = model.get(name);
        s.min = String(-e);
        s.max = String(e);
        if (document.activeElement !== s || Number(s.value) !== v) s.value = String(v);
        s.setAttribute("aria-valuetext", `${name} = ${v.toFixed(2)}`);
      }
    },
    mark(ctx, X, Y) {
      const z1 = model.get("z1"), z2 = model.get("z2");
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
    },
  };
}
