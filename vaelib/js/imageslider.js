// Image slider: a slider picks one of F precomputed frames, each a row of N small greyscale images.
//
// Used in chapter 2 for reconstructions against code size, and for decodes along one latent unit. All the images are
// embedded in the widget's state, so the widget works on the book's static page with no kernel.
// State (synced from Python, see vaelib.widgets.ImageSliderExplorer):
//   frames:  base64 uint8, F * N * H * W grey levels (0 = black, 255 = white), frame-major then image then row.
//   n_frames, n_images, height, width;  index: the frame shown.
//   reference: base64 uint8, N * H * W (e.g. the inputs), drawn above the frame; "" for none.
//   frame_labels: F strings, the readout for each frame;  slider_label, reference_label, frame_row_label, description.


export default {
  render({ model, el }) {
    const uid = uniqueId("imageslider");
    const SCALE = 2, GAP = 4, LABEL = 18;       // CSS pixels per image pixel, between images, above each row

    const root = widgetRoot("imageslider", { column: true });
    const { label, input } = sliderRow(root, { id: `${uid}-index`, label: "", min: 0, step: 1, inputWidth: "14rem",
                                               showValue: false, wrap: true });
    const readout = make("span", { class: "vaelib-imageslider-readout", "aria-live": "polite" });
    readout.style.cssText = "font-variant-numeric:tabular-nums";
    input.after(readout);
    const canvas = figureCanvas("image-rendering:pixelated;image-rendering:crisp-edges");
    root.append(canvas);
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
      syncSlider(input, readout, k, labels[k] || String(k));
      readout.textContent = labels[k] || "";

      const rows = reference.length ? [[model.get("reference_label"), reference, 0], [model.get("frame_row_label"), frames, k * N * H * W]]
                                    : [[model.get("frame_row_label"), frames, k * N * H * W]];
      const cw = N * W * SCALE + (N - 1) * GAP, ch = rows.length * (H * SCALE + LABEL);
      const ctx = prepareCanvas(canvas, cw, ch);
      drawImageRows(ctx, rows, N, H, W, { scale: SCALE, gap: GAP, caption: LABEL });
      canvas.setAttribute("aria-label", `${model.get("description") || "Images"}: ${labels[k] || `frame ${k}`}.`);
    }

    bindSlider(model, input, "index", draw);

    parse();
    draw();
    const onData = () => { parse(); draw(); };
    const offDraw = onChanges(model, ["index", "frame_labels", "slider_label", "description", "reference_label",
                                      "frame_row_label"], draw);
    const offData = onChanges(model, ["frames", "reference"], onData);
    return () => { offDraw(); offData(); };
  },
};
