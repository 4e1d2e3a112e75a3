// Conditional VAE explorer: pick a class y and move a point z = (z1, z2) in the 2-D latent plane; the decoder
// p(x | z, y) draws the image here, in the browser, from weights embedded in the widget's state (no kernel needed).
//
// State (synced from Python, see vaelib.widgets.CVAEExplorer): layers, dtype, output and image_shape as in the latent
// explorer (common.js's parseLayers and decode), with a first layer that reads [z1, z2, one_hot(y)];
//   n_classes: the number of classes;  digit: the class y picked;  z1, z2: the point;  extent: the plane shows
//   [-extent, extent]^2;  points: base64 float32 (N*2, interleaved) codes mu(x, y) with their `labels` (ints) and
//   `label_names` (strings): the plane shows the codes of the picked class.
// Drawn: the plane, the image decoded at (z, y), and a strip of every class decoded at the same z (click to pick).

// [1 at index y, 0 elsewhere], n long.
export function oneHot(y, n) {
  const v = new Array(n).fill(0);
  v[y] = 1;
  return v;
}

// The decoder's output for class y at z = [z1, z2]: decode([z, one_hot(y)]).
export function decodeClass(net, z, y, nClasses, output) {
  return decode(net, [...z, ...oneHot(y, nClasses)], output);
}

export default {
  render({ model, el }) {
    const uid = uniqueId("cvae");
    const PLANE = 300, PAD = 34, TOP = 8, RIGHT = 12, IMG = 196, GAP = 3;   // CSS pixels
    const CW = PAD + PLANE + RIGHT, CH = TOP + PLANE + PAD;

    const root = widgetRoot("cvae", { gap: "1.25rem" });

    // Left: the latent plane, a caption, the strip of every class at this z.
    const left = make("div");
    const plane = figureCanvas("cursor:crosshair;touch-action:none");
    const caption = make("div", { class: "vaelib-cvae-caption" });
    caption.style.cssText = "max-width:346px;font-size:0.85rem;margin:0.3rem 0";
    const strip = figureCanvas("cursor:pointer");
    plane.classList.add("vaelib-cvae-plane");
    strip.classList.add("vaelib-cvae-strip");
    left.append(plane, caption, strip);

    // Right: the decoded image and the controls.
    const right = sidePanel("gap:0.5rem");
    const shape = model.get("image_shape") || [28, 28];
    const [H, W] = shape.length === 3 ? shape.slice(1) : shape;
    const image = imageCanvas(H, W, IMG, "vaelib-cvae-image");
    right.appendChild(image);
    const digitRow = sliderRow(right, { id: `${uid}-digit`, label: "class y", min: 0, step: 1, labelWidth: "7.5rem",
                                        inputWidth: "10rem" });
    const point = latentPoint(model, right, plane, uid, { CW, CH, PAD, TOP, PLANE }, () => draw());
    const readout = readoutBox("vaelib-cvae-readout");
    right.appendChild(readout);
    root.append(left, right);
    el.appendChild(root);

    let net = [], byClass = [];
    const nClasses = () => Math.max(1, model.get("n_classes") || 1);
    const name = (k) => { const names = model.get("label_names") || []; return names[k] !== undefined ? names[k] : String(k); };
    const extent = () => Math.max(1e-6, model.get("extent") || 3);
    const parse = () => { net = parseLayers(model.get("layers"), model.get("dtype")); };
    const parsePoints = () => {   // the codes, split by class: byClass[k] = interleaved (z1, z2) of class k
      const pts = model.get("points") ? floatsFromBase64(model.get("points"), "float32") : new Float32Array(0);
      const labels = model.get("labels") || [];
      byClass = Array.from({ length: nClasses() }, () => []);
      labels.forEach((k, i) => { if (byClass[k]) byClass[k].push(pts[2 * i], pts[2 * i + 1]); });
    };
    const pick = (k) => {
      model.set("digit", Math.min(nClasses() - 1, Math.max(0, Math.round(k))));
      model.save_changes();
      draw();   // local redraw: works on a static page with no kernel
    };
    bindSlider(model, digitRow.input, "digit", () => draw(), (v) => Math.round(Number(v)));

    const tile = () => Math.floor((PLANE - GAP * (nClasses() - 1)) / nClasses());
    strip.addEventListener("click", (ev) => {
      const rect = strip.getBoundingClientRect();
      const x = (ev.clientX - rect.left) * CW / rect.width - PAD;
      const k = Math.floor(x / (tile() + GAP));
      if (k >= 0 && k < nClasses() && x - k * (tile() + GAP) <= tile()) pick(k);
    });

    function draw() {
      const n = nClasses(), y = Math.min(n - 1, Math.max(0, model.get("digit") || 0));
      const z1 = model.get("z1"), z2 = model.get("z2"), e = extent();
      point.sync();
      digitRow.input.max = String(n - 1);
      syncSlider(digitRow.input, digitRow.value, y, name(y));
      digitRow.input.setAttribute("aria-valuetext", `class ${name(y)}`);

      // The plane with the picked class's codes.
      const pts = byClass[y] || [];
      const ctx = prepareCanvas(plane, CW, CH);
      const { X, Y } = drawLatentPlane(ctx, { x: PAD, y: TOP, side: PLANE }, e, pts, new Array(pts.length / 2).fill(y));
      point.mark(ctx, X, Y);
      caption.textContent = `Dots: posterior means \u03bc(x, y) of ${pts.length / 2} test images of class ${name(y)}.`;

      // Every class decoded at this z; the picked one is also the large image.
      const decoded = [];
      for (let k = 0; k < n; k++) {
        decoded.push(net.length ? decodeClass(net, [z1, z2], k, n, model.get("output")) : new Float64Array(W * H));
      }
      drawGrey(image.getContext("2d"), decoded[y], 0, H, W, 0, 0, 1, 255);
      const t = tile(), sctx = prepareCanvas(strip, CW, t + 34);
      sctx.fillStyle = "#222222";
      sctx.textAlign = "left";
      sctx.textBaseline = "top";
      sctx.fillText("Every class at this z (click one to pick it):", PAD, 1);
      sctx.textAlign = "center";
      for (let k = 0; k < n; k++) {
        const x = PAD + k * (t + GAP);
        drawGrey(sctx, decoded[k], 0, H, W, x, 16, t / W, 255);
        sctx.fillStyle = k === y ? TAB10[k % 10] : "#222222";
        sctx.fillText(name(k).slice(0, 5), x + t / 2, 18 + t * H / W);
        if (k === y) {
          sctx.strokeStyle = TAB10[k % 10];
          sctx.lineWidth = 2;
          sctx.strokeRect(x - 1, 15, t + 2, t * H / W + 2);
        }
      }

      const ink = meanOf(decoded[y], W * H);
      readout.textContent = `class ${name(y)} at z = (${z1.toFixed(2)}, ${z2.toFixed(2)})`;
      plane.setAttribute("aria-label",
        `Latent plane from ${-e} to ${e} on both axes with the codes of ${pts.length / 2} test images of class ` +
        `${name(y)} and dashed prior circles of radius 1, 2 and 3; the marked point is z = (${z1.toFixed(2)}, ${z2.toFixed(2)}).`);
      image.setAttribute("aria-label", `Decoded ${H} by ${W} image of class ${name(y)} at z = (${z1.toFixed(2)}, ` +
        `${z2.toFixed(2)}); mean pixel intensity ${ink.toFixed(3)}.`);
      strip.setAttribute("aria-label", `The ${n} classes decoded at the same z = (${z1.toFixed(2)}, ${z2.toFixed(2)}), ` +
        `class ${name(y)} outlined; clicking one picks it (the class slider does the same from the keyboard).`);
    }

    parse();
    parsePoints();
    draw();
    const offs = [onChanges(model, ["z1", "z2", "extent", "output", "digit", "label_names"], () => draw()),
                  onChanges(model, ["layers", "dtype"], () => { parse(); draw(); }),
                  onChanges(model, ["points", "labels", "n_classes"], () => { parsePoints(); draw(); })];
    return () => offs.forEach((off) => off());
  },
};
