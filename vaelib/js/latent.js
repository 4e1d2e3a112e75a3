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
// Decoding (common.js's parseLayers and decode): h = z; for each layer h = W h + b, with ReLU between layers; the last
// layer's output goes through `output`.

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
    const image = imageCanvas(H, W, IMG);
    right.appendChild(image);
    const point = latentPoint(model, right, plane, uid, { CW, CH, PAD, TOP, PLANE }, () => draw());
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

    function drawImage(z1, z2) {
      const p = net.length ? decode(net, [z1, z2], model.get("output")) : new Float64Array(W * H);
      drawGrey(image.getContext("2d"), p, 0, H, W, 0, 0, 1, 255);
      return meanOf(p, W * H);
    }

    function draw() {
      const z1 = model.get("z1"), z2 = model.get("z2");
      const e = extent();
      point.sync();
      const ctx = prepareCanvas(plane, CW, CH);
      const { X, Y } = drawLatentPlane(ctx, { x: PAD, y: TOP, side: PLANE }, e, points, labels);
      point.mark(ctx, X, Y);
      const ink = drawImage(z1, z2);
      const r = Math.hypot(z1, z2);
      readout.textContent = `z = (${z1.toFixed(2)}, ${z2.toFixed(2)}), distance from the origin ${r.toFixed(2)}`;
      plane.setAttribute("aria-label",
        `Latent plane from ${-e} to ${e} on both axes, with ${points.length / 2} encoded test digits coloured by ` +
        `label and dashed prior circles of radius 1, 2 and 3; the marked point is z = (${z1.toFixed(2)}, ${z2.toFixed(2)}).`);
      image.setAttribute("aria-label",
        `Decoded ${H} by ${W} image at z = (${z1.toFixed(2)}, ${z2.toFixed(2)}); mean pixel intensity ${ink.toFixed(3)}.`);
    }

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
