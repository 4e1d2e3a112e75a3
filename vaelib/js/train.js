// Training explorer (chapter 5): a VAE with a 2-D latent trained by Adam in the browser, on images embedded in the page.
//
// The network is vaelib.VAE(D, hidden=(H,), latent_dim=2) with a Bernoulli decoder:
//   encoder  a1 = W1 x + b1, h1 = relu(a1), mu = Wmu h1 + bmu, logvar = Wlv h1 + blv      (q(z|x) = N(mu, diag e^logvar))
//   sample   z = mu + exp(logvar / 2) * eps, eps ~ N(0, I)                                  (the reparameterisation)
//   decoder  a3 = W3 z + b3, h3 = relu(a3), logits = W4 h3 + b4                             (p(x|z) = Bernoulli(sigmoid))
//   loss     per image: BCE(logits, x) summed over pixels + beta * 0.5 * sum(mu^2 + e^logvar - 1 - logvar); the batch
//            mean is minimised (vaelib.losses' -elbo(model, x, beta=beta), mean over the batch).
// The forward and backward passes below are written out by hand (tests/test_widgets_train.py checks them against
// PyTorch's autograd); the Adam step is torch.optim.Adam's. The images are binary, so the encoder's first layer only
// visits the pixels that are on, and its weights are stored transposed (W1T: one row of H numbers per pixel).
// Training runs in slices of a few tens of milliseconds between animation frames, so the page stays responsive.
// State (synced from Python, see vaelib.widgets.TrainingExplorer):
//   images: base64 of the N binary images of H x W pixels, bit-packed, ceil(H W / 8) bytes per image (pixel k of an
//           image is bit 7 - k % 8 of its byte k / 8, numpy.packbits' order);  labels: base64 uint8, N class labels;
//   n_images, height, width, hidden, batch_size, seed, n_plot (images whose latent means are drawn), n_show;
//   beta, lr: the KL weight and Adam's learning rate (the sliders);  label_names: a name per class.

// ---- the network and its maths (exported for the tests under Node) ----------------------------------------------

// Parameter names in vaelib.VAE's state_dict, with this module's names. W1T is body.0.weight transposed.
export const TORCH_NAMES = {
  W1T: "body.0.weight", b1: "body.0.bias", Wmu: "to_mu.weight", bmu: "to_mu.bias", Wlv: "to_logvar.weight",
  blv: "to_logvar.bias", W3: "decoder.0.weight", b3: "decoder.0.bias", W4: "decoder.2.weight", b4: "decoder.2.bias",
};

// A seeded random number generator (mulberry32) with uniform() in [0, 1) and normal() (Box-Muller).
export function makeRandom(seed) {
  let a = (seed >>> 0) || 0x9e3779b9, spare = null;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const normal = () => {
    if (spare !== null) { const s = spare; spare = null; return s; }
    const u = 1 - uniform(), v = uniform(), r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
  return { uniform, normal };
}

// The parameter shapes [rows, cols] (biases: [n, 1]) of a network with D pixels, H hidden units and latent size L.
export function paramShapes(D, H, L = 2) {
  return { W1T: [D, H], b1: [H, 1], Wmu: [L, H], bmu: [L, 1], Wlv: [L, H], blv: [L, 1],
           W3: [H, L], b3: [H, 1], W4: [D, H], b4: [D, 1] };
}

// A network {D, H, L, p: {name: Float32Array}}, initialised as torch.nn.Linear is: weights and biases uniform in
// +-1/sqrt(fan_in), from `random`.
export function createNet(D, H, L = 2, random = makeRandom(0)) {
  const p = {};
  for (const [name, [rows, cols]] of Object.entries(paramShapes(D, H, L))) p[name] = new Float32Array(rows * cols);
  const fanIn = { W1T: D, b1: D, Wmu: H, bmu: H, Wlv: H, blv: H, W3: L, b3: L, W4: H, b4: H };
  for (const name of Object.keys(p)) {
    const bound = 1 / Math.sqrt(fanIn[name]);
    for (let i = 0; i < p[name].length; i++) p[name][i] = (2 * random.uniform() - 1) * bound;
  }
  return { D, H, L, p };
}

// Zeroed arrays of the parameters' sizes (Float64Array): gradients, Adam's moments.
export function zerosLike(net) {
  const out = {};
  for (const [name, a] of Object.entries(net.p)) out[name] = new Float64Array(a.length);
  return out;
}

// Copy torch's parameters {state_dict name: flat row-major array} into the network (W1T is transposed here).
export function setTorchParams(net, params) {
  for (const [name, torchName] of Object.entries(TORCH_NAMES)) {
    const src = params[torchName];
    if (!src || src.length !== net.p[name].length) {
      throw new Error(`${torchName}: expected ${net.p[name].length} numbers, got ${src ? src.length : "none"}`);
    }
    if (name === "W1T") {   // torch: (H, D) row-major; here (D, H)
      for (let i = 0; i < net.H; i++) for (let j = 0; j < net.D; j++) net.p.W1T[j * net.H + i] = src[i * net.D + j];
    } else net.p[name].set(src);
  }
}

// Arrays of the network's shapes (parameters or gradients) as {state_dict name: plain array}, torch's layout.
export function toTorchLayout(net, arrays) {
  const out = {};
  for (const [name, torchName] of Object.entries(TORCH_NAMES)) {
    const a = arrays[name];
    if (name === "W1T") {
      const t = new Array(a.length);
      for (let i = 0; i < net.H; i++) for (let j = 0; j < net.D; j++) t[i * net.D + j] = a[j * net.H + i];
      out[torchName] = t;
    } else out[torchName] = Array.from(a);
  }
  return out;
}

// Binary images as {N, D, dense: Uint8Array(N D) of 0/1, on: Uint16Array of the lit pixels' indices, image by image,
// start: Int32Array(N + 1) (image n's lit pixels are on[start[n] .. start[n + 1]])}, from bit-packed bytes.
export function unpackImages(bytes, N, D) {
  const per = Math.ceil(D / 8), dense = new Uint8Array(N * D), start = new Int32Array(N + 1);
  let count = 0;
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < D; k++) {
      const bit = (bytes[n * per + (k >> 3)] >> (7 - (k & 7))) & 1;
      dense[n * D + k] = bit;
      count += bit;
    }
    start[n + 1] = count;
  }
  const on = new Uint16Array(count);
  for (let n = 0, c = 0; n < N; n++) for (let k = 0; k < D; k++) if (dense[n * D + k]) on[c++] = k;
  return { N, D, dense, on, start };
}

// Images given as rows of 0/1 numbers (the tests), in unpackImages' form.
export function imagesFromRows(rows) {
  const N = rows.length, D = rows[0].length, per = Math.ceil(D / 8), bytes = new Uint8Array(N * per);
  rows.forEach((row, n) => row.forEach((v, k) => { if (v) bytes[n * per + (k >> 3)] |= 1 << (7 - (k & 7)); }));
  return unpackImages(bytes, N, D);
}

// The encoder on image n: fills a1 (pre-activations), h1 and returns nothing; mu and lv (length L) are written too.
function encodeInto(net, data, n, a1, h1, mu, lv) {
  const { H, L, p } = net;
  a1.set(p.b1);
  for (let c = data.start[n]; c < data.start[n + 1]; c++) {
    const row = data.on[c] * H;
    for (let i = 0; i < H; i++) a1[i] += p.W1T[row + i];
  }
  for (let i = 0; i < H; i++) h1[i] = a1[i] > 0 ? a1[i] : 0;
  for (let k = 0; k < L; k++) {
    let m = p.bmu[k], v = p.blv[k];
    for (let i = 0; i < H; i++) { m += p.Wmu[k * H + i] * h1[i]; v += p.Wlv[k * H + i] * h1[i]; }
    mu[k] = m;
    lv[k] = v;
  }
}

// The decoder's hidden layer at z: fills a3 and h3.
function decodeHidden(net, z, a3, h3) {
  const { H, L, p } = net;
  for (let i = 0; i < H; i++) {
    let a = p.b3[i];
    for (let k = 0; k < L; k++) a += p.W3[i * L + k] * z[k];
    a3[i] = a;
    h3[i] = a > 0 ? a : 0;
  }
}

// One minibatch: the images data[idx[b]], noise eps (B * L numbers, image b's at b * L) and the KL weight beta.
// Adds the gradient of the batch-mean loss (1/B) sum_b [recon_b + beta kl_b] to `grads` (zerosLike(net)), unless grads
// is null, and returns the batch means {recon, kl, loss: recon + beta kl, negElbo: recon + kl} in nats per image.
// Layer by layer over the whole batch, so that each row of the large output layer is read once per minibatch.
export function lossAndGrad(net, data, idx, eps, beta, grads) {
  const { D, H, L, p } = net, B = idx.length, inv = 1 / B;
  const a1 = new Float64Array(B * H), h1 = new Float64Array(B * H), a3 = new Float64Array(B * H);
  const h3 = new Float64Array(B * H), dh3 = new Float64Array(B * H), dh1 = new Float64Array(H);
  const mu = new Float64Array(B * L), lv = new Float64Array(B * L), sd = new Float64Array(B * L);
  const z = new Float64Array(B * L), dz = new Float64Array(L), dmu = new Float64Array(L), dlv = new Float64Array(L);
  let reconSum = 0, klSum = 0;
  for (let b = 0; b < B; b++) {    // encoder, sample, decoder hidden layer
    const o = b * H, ol = b * L;
    encodeInto(net, data, idx[b], a1.subarray(o, o + H), h1.subarray(o, o + H), mu.subarray(ol, ol + L),
               lv.subarray(ol, ol + L));
    for (let k = ol; k < ol + L; k++) {
      sd[k] = Math.exp(0.5 * lv[k]);
      z[k] = mu[k] + sd[k] * eps[k];
      klSum += 0.5 * (mu[k] * mu[k] + sd[k] * sd[k] - 1 - lv[k]);
    }
    decodeHidden(net, z.subarray(ol, ol + L), a3.subarray(o, o + H), h3.subarray(o, o + H));
  }
  // Output layer, one pixel j at a time for the whole batch: logits, the Bernoulli loss and its backward pass. Each
  // image's decoder units that are off (ReLU at 0) add nothing to its logits and get no gradient: only the ones on
  // (act[b * H ..], their count nAct[b]) are visited.
  const act = new Int32Array(B * H), nAct = new Int32Array(B), hv = new Float64Array(B * H);
  for (let b = 0; b < B; b++) {
    let c = 0;
    for (let i = 0; i < H; i++) if (h3[b * H + i] > 0) { act[b * H + c] = i; hv[b * H + c] = h3[b * H + i]; c++; }
    nAct[b] = c;
  }
  const W4 = p.W4, b4 = p.b4, dense = data.dense, gRow = new Float64Array(H), dh = new Float64Array(B * H);
  for (let j = 0; j < D; j++) {
    const row = j * H;
    let gb = 0;
    for (let b = 0; b < B; b++) {
      const o = b * H, na = nAct[b];
      let l = b4[j];
      for (let a = 0; a < na; a++) l += W4[row + act[o + a]] * hv[o + a];
      const x = dense[idx[b] * D + j];
      // BCE with logits, -[x log s(l) + (1 - x) log(1 - s(l))] = softplus(l) - l x, and its derivative s(l) - x.
      const e = Math.exp(-Math.abs(l));
      reconSum += (l > 0 ? l : 0) + Math.log1p(e) - l * x;
      if (!grads) continue;
      const d = ((l >= 0 ? 1 : e) / (1 + e) - x) * inv;    // d loss / d logit
      gb += d;
      for (let a = 0; a < na; a++) {
        const i = act[o + a];
        gRow[i] += d * hv[o + a];
        dh[o + a] += d * W4[row + i];
      }
    }
    if (!grads) continue;
    grads.b4[j] += gb;
    const gW4 = grads.W4;
    for (let i = 0; i < H; i++) { gW4[row + i] += gRow[i]; gRow[i] = 0; }
  }
  for (let b = 0; b < B; b++) for (let a = 0; a < nAct[b]; a++) dh3[b * H + act[b * H + a]] = dh[b * H + a];
  const recon = reconSum * inv, kl = klSum * inv, out = { recon, kl, loss: recon + beta * kl, negElbo: recon + kl };
  if (!grads) return out;
  for (let b = 0; b < B; b++) {
    const o = b * H, ol = b * L;
    // Decoder hidden layer.
    dz.fill(0);
    for (let i = 0; i < H; i++) {
      if (a3[o + i] <= 0) continue;
      const da = dh3[o + i];
      grads.b3[i] += da;
      for (let k = 0; k < L; k++) { grads.W3[i * L + k] += da * z[ol + k]; dz[k] += da * p.W3[i * L + k]; }
    }
    // The sample and the KL: z = mu + sd * eps, sd = exp(lv / 2).
    for (let k = 0; k < L; k++) {
      const s = sd[ol + k];
      dmu[k] = dz[k] + beta * mu[ol + k] * inv;
      dlv[k] = dz[k] * eps[ol + k] * 0.5 * s + beta * 0.5 * (s * s - 1) * inv;
    }
    // Encoder heads and hidden layer.
    dh1.fill(0);
    for (let k = 0; k < L; k++) {
      grads.bmu[k] += dmu[k];
      grads.blv[k] += dlv[k];
      for (let i = 0; i < H; i++) {
        grads.Wmu[k * H + i] += dmu[k] * h1[o + i];
        grads.Wlv[k * H + i] += dlv[k] * h1[o + i];
        dh1[i] += dmu[k] * p.Wmu[k * H + i] + dlv[k] * p.Wlv[k * H + i];
      }
    }
    for (let i = 0; i < H; i++) {
      if (a1[o + i] <= 0) dh1[i] = 0;
      grads.b1[i] += dh1[i];
    }
    const n = idx[b];
    for (let c = data.start[n]; c < data.start[n + 1]; c++) {   // only lit pixels have a gradient (x_j = 1)
      const r = data.on[c] * H;
      for (let i = 0; i < H; i++) grads.W1T[r + i] += dh1[i];
    }
  }
  return out;
}

// Adam (Kingma and Ba, 2015) as torch.optim.Adam with its defaults (betas 0.9, 0.999, eps 1e-8, no weight decay):
// one step on every parameter from `grads`; `state` = {t, m, v} (makeAdam) is updated.
export function makeAdam(net) {
  return { t: 0, m: zerosLike(net), v: zerosLike(net) };
}

export function adamStep(net, grads, state, lr, b1 = 0.9, b2 = 0.999, eps = 1e-8) {
  state.t += 1;
  const bc1 = 1 - b1 ** state.t, bc2 = Math.sqrt(1 - b2 ** state.t), step = lr / bc1;
  for (const name of Object.keys(net.p)) {
    const w = net.p[name], g = grads[name], m = state.m[name], v = state.v[name];
    for (let i = 0; i < w.length; i++) {
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      w[i] -= step * m[i] / (Math.sqrt(v[i]) / bc2 + eps);
    }
  }
}

// The posterior means mu(x) of images idx: a Float32Array of 2 numbers per image (z1, z2 interleaved); with
// `variances` (a Float32Array of the same length) also the posterior variances exp(logvar(x)).
export function latentMeans(net, data, idx, variances = null) {
  const { H, L } = net, out = new Float32Array(idx.length * L);
  const a1 = new Float64Array(H), h1 = new Float64Array(H), mu = new Float64Array(L), lv = new Float64Array(L);
  idx.forEach((n, b) => {
    encodeInto(net, data, n, a1, h1, mu, lv);
    for (let k = 0; k < L; k++) {
      out[b * L + k] = mu[k];
      if (variances) variances[b * L + k] = Math.exp(lv[k]);
    }
  });
  return out;
}

// The decoder's pixel means sigmoid(logits) at the codes zs (L numbers each, concatenated): Float64Array(n D).
export function decodeMeans(net, zs) {
  const { D, H, L, p } = net, n = zs.length / L, out = new Float64Array(n * D);
  const a3 = new Float64Array(H), h3 = new Float64Array(H);
  for (let b = 0; b < n; b++) {
    decodeHidden(net, zs.slice(b * L, (b + 1) * L), a3, h3);
    for (let j = 0; j < D; j++) {
      let l = p.b4[j];
      for (let i = 0; i < H; i++) l += p.W4[j * H + i] * h3[i];
      out[b * D + j] = 1 / (1 + Math.exp(-l));
    }
  }
  return out;
}

// How far apart the classes lie in the latent plane: between-class over within-class variance,
// sum_c n_c |m_c - m|^2 / sum_i (|z_i - m_{y_i}|^2 + v_i), for points z_i (2-D, interleaved) with labels y_i and
// class means m_c. With `variances` (the posterior variances, interleaved) v_i = their sum for point i, so the score
// is that of codes drawn from q(z|x) (the law of total variance) and falls to 0 when the posterior collapses onto the
// prior; without, v_i = 0 (the means alone). About 0 when the labels do not show, large when the classes separate.
export function separation(points, labels, variances = null) {
  const n = labels.length, sums = new Map();
  let gx = 0, gy = 0;
  for (let i = 0; i < n; i++) {
    const s = sums.get(labels[i]) || { n: 0, x: 0, y: 0 };
    s.n += 1; s.x += points[2 * i]; s.y += points[2 * i + 1];
    sums.set(labels[i], s);
    gx += points[2 * i]; gy += points[2 * i + 1];
  }
  gx /= n; gy /= n;
  let between = 0, within = 0;
  for (const s of sums.values()) between += ((s.x / s.n - gx) ** 2 + (s.y / s.n - gy) ** 2) * s.n;
  for (let i = 0; i < n; i++) {
    const s = sums.get(labels[i]);
    within += (points[2 * i] - s.x / s.n) ** 2 + (points[2 * i + 1] - s.y / s.n) ** 2;
    if (variances) within += variances[2 * i] + variances[2 * i + 1];
  }
  return within > 0 ? between / within : 0;
}

// A training run: the network, Adam, the minibatch order and the history of the losses.
export function makeTrainer(data, { hidden, batchSize, seed }) {
  const random = makeRandom(seed);
  const net = createNet(data.D, hidden, 2, random);
  const trainer = { data, net, adam: makeAdam(net), grads: zerosLike(net), random, batchSize, order: [], pos: 0,
                    steps: 0, images: 0, history: [], every: 10, pending: { n: 0, recon: 0, kl: 0 }, recent: [] };
  return trainer;
}

// One Adam step on the next minibatch (a fresh random order of the images every epoch). Returns the batch's losses.
export function trainStep(t, beta, lr) {
  const { data, net, random, batchSize } = t;
  if (t.pos + batchSize > t.order.length) {   // a new epoch: shuffle (Fisher-Yates)
    t.order = Array.from({ length: data.N }, (_, i) => i);
    for (let i = data.N - 1; i > 0; i--) {
      const j = Math.floor(random.uniform() * (i + 1));
      [t.order[i], t.order[j]] = [t.order[j], t.order[i]];
    }
    t.pos = 0;
  }
  const idx = t.order.slice(t.pos, t.pos + batchSize);
  t.pos += batchSize;
  const eps = new Float64Array(batchSize * net.L);
  for (let i = 0; i < eps.length; i++) eps[i] = random.normal();
  for (const g of Object.values(t.grads)) g.fill(0);
  const out = lossAndGrad(net, data, idx, eps, beta, t.grads);
  if (Number.isFinite(out.loss)) adamStep(net, t.grads, t.adam, lr);
  t.steps += 1;
  t.images += batchSize;
  // The history: one point per `every` steps (their mean), 10 at first; whenever it grows past 400 points, every
  // other point is dropped and `every` doubles, so that the points stay evenly spaced.
  const pd = t.pending;
  pd.n += 1; pd.recon += out.recon; pd.kl += out.kl;
  if (pd.n === t.every) {
    t.history.push({ step: t.steps, recon: pd.recon / pd.n, kl: pd.kl / pd.n, beta });
    t.pending = { n: 0, recon: 0, kl: 0 };
    if (t.history.length > 400) {
      const last = t.history.length % 2 ? t.history[t.history.length - 1] : null;   // dropped: its steps carry on
      t.history = t.history.filter((_, i) => i % 2 === 1);
      if (last) t.pending = { n: t.every, recon: last.recon * t.every, kl: last.kl * t.every };
      t.every *= 2;
    }
  }
  t.recent.push(out);
  if (t.recent.length > 20) t.recent.shift();
  return out;
}

// The mean of the last (up to 20) minibatches' losses: {recon, kl, negElbo}.
export function recentLoss(t) {
  const n = t.recent.length || 1, sum = (k) => t.recent.reduce((s, o) => s + o[k], 0) / n;
  return { recon: sum("recon"), kl: sum("kl"), negElbo: sum("negElbo") };
}

// ---- the widget ---------------------------------------------------------------------------------------------

const fmtBeta = (b) => (b >= 10 ? b.toFixed(0) : b >= 1 ? b.toFixed(1) : b.toPrecision(2));
const fmtLr = (r) => r.toExponential(1);
const SLICE_MS = 30;    // training per animation frame
const DRAW_MS = 400;    // redraw the figures at most this often while training

export default {
  render({ model, el }) {
    const uid = uniqueId("train");
    const root = widgetRoot("train", { column: true });

    // Top: the controls and the readouts. Below: the latent plane beside the loss curves, then the images.
    const controls = make("div");
    controls.style.cssText = "display:flex;flex-wrap:wrap;align-items:center;gap:0.4rem 1.25rem";
    const buttons = make("div");
    buttons.style.cssText = "display:flex;gap:0.5rem";
    const trainButton = make("button", { type: "button", class: "vaelib-train-button" }, "Train");
    const resetButton = make("button", { type: "button", class: "vaelib-train-reset" }, "Reset");
    for (const b of [trainButton, resetButton]) b.style.cssText = "padding:0.25rem 0.9rem;font:inherit;cursor:pointer";
    buttons.append(trainButton, resetButton);
    controls.appendChild(buttons);
    const sliders = sliderTable(controls, uid, [["beta", "\u03b2 (weight of the KL)", -1, 2, 0.05],
                                                ["lr", "learning rate", -4, -2, 0.01]], { inputWidth: "8rem" });
    const readouts = make("div");
    readouts.style.cssText = "display:flex;flex-wrap:wrap;align-items:baseline;gap:0.2rem 1rem";
    const lossBox = make("div", { class: "vaelib-train-loss", "data-vaelib-loss": "" });
    lossBox.style.cssText = "font-variant-numeric:tabular-nums;font-weight:bold";
    const status = make("div", { class: "vaelib-train-status", "data-vaelib-separation": "", "data-vaelib-kl": "" });
    status.style.cssText = "font-variant-numeric:tabular-nums;font-size:0.9rem";
    const announce = readoutBox("vaelib-train-announce", "font-size:0.9rem");
    readouts.append(lossBox, status, announce);
    const figures = make("div");
    figures.style.cssText = "display:flex;flex-wrap:wrap;gap:0.5rem 1rem;align-items:flex-start";
    const left = make("div");
    const plane = figureCanvas();
    const legend = make("div", { class: "vaelib-train-legend" });
    legend.style.cssText = "display:flex;flex-wrap:wrap;gap:0.2rem 0.6rem;max-width:300px;font-size:0.85rem;margin-top:0.3rem";
    left.append(plane, legend);
    const curves = figureCanvas();
    figures.append(left, curves);
    const pictures = figureCanvas();
    root.append(controls, readouts, figures, pictures);
    el.appendChild(root);

    const N = model.get("n_images"), Hpx = model.get("height"), Wpx = model.get("width");
    const data = unpackImages(bytesFromBase64(model.get("images")), N, Hpx * Wpx);
    const labels = Array.from(bytesFromBase64(model.get("labels")));
    const nPlot = Math.min(N, model.get("n_plot")), nShow = Math.min(N, model.get("n_show"));
    const plotIdx = Array.from({ length: nPlot }, (_, i) => i), plotLabels = labels.slice(0, nPlot);
    const showIdx = Array.from({ length: nShow }, (_, i) => i);
    const showInputs = new Float64Array(nShow * data.D);
    for (let i = 0; i < showInputs.length; i++) showInputs[i] = data.dense[i];
    classLegend(legend, plotLabels, model.get("label_names") || []);

    let trainer = null, running = false, frame = null, lastDraw = 0, runs = 0, diverged = false, priorZ = null;
    const beta = () => 10 ** model.get("beta_log10");
    const lr = () => 10 ** model.get("lr_log10");

    function reset() {
      trainer = makeTrainer(data, { hidden: model.get("hidden"), batchSize: model.get("batch_size"),
                                    seed: model.get("seed") + runs });
      runs += 1;
      diverged = false;
      const r = makeRandom(model.get("seed") + 1000003);
      priorZ = Float64Array.from({ length: 2 * nShow }, () => r.normal());
      // The loss before any training, on the first minibatch's worth of images.
      const idx = Array.from({ length: Math.min(N, trainer.batchSize) }, (_, i) => i);
      const eps = Float64Array.from({ length: 2 * idx.length }, () => r.normal());
      trainer.recent = [lossAndGrad(trainer.net, data, idx, eps, beta(), null)];
    }

    function drawPlane() {
      const vars = new Float32Array(2 * nPlot), pts = latentMeans(trainer.net, data, plotIdx, vars);
      let big = 0;
      const abs = Array.from(pts, Math.abs).sort((a, b) => a - b);
      if (abs.length) big = abs[Math.floor(0.99 * (abs.length - 1))];
      const extent = Math.max(3, Math.ceil(2 * big) / 2);
      const S = 260, PAD = 34, ctx = prepareCanvas(plane, PAD + S + 10, 8 + S + PAD);
      drawLatentPlane(ctx, { x: PAD, y: 8, side: S }, extent, pts, plotLabels, { size: 2.5 });
      const sep = separation(pts, plotLabels, vars);
      plane.setAttribute("aria-label", `Latent plane from ${-extent} to ${extent}: the posterior means of ${nPlot} ` +
        `training images coloured by label, after ${trainer.steps} training steps; class separation ` +
        `${sep.toFixed(2)}.`);
      return sep;
    }

    function drawCurves() {
      const hist = trainer.history, W = 340, Hc = 300, ctx = prepareCanvas(curves, W, Hc);
      const maxStep = Math.max(10, hist.length ? hist[hist.length - 1].step : 10);
      const panels = [["reconstruction \u2212E_q[log p(x|z)]", "recon", "#2ca02c", { x: 52, y: 36, w: W - 62, h: 90 }],
                      ["KL(q(z|x) \u2016 p(z))", "kl", "#9467bd", { x: 52, y: 166, w: W - 62, h: 90 }]];
      ctx.fillStyle = "#222222";
      ctx.textAlign = "left";
      ctx.textBaseline = "top";
      ctx.font = "12px sans-serif";
      ctx.fillText(`\u03b2 = ${fmtBeta(beta())}, learning rate ${fmtLr(lr())}`, 4, 2);
      for (const [title, key, color, box] of panels) {
        const ys = hist.map((h) => h[key]);
        // The range of the curve after its first tenth, so that the steep start does not flatten the rest.
        const tail = ys.slice(Math.floor(ys.length / 10));
        let lo = tail.length ? Math.min(...tail) : 0, hi = tail.length ? Math.max(...tail) : 1;
        if (key === "kl") lo = 0;
        const pad = 0.05 * (hi - lo);
        lo = key === "kl" ? 0 : lo - pad;
        hi += pad;
        if (hi - lo < 1e-6) hi = lo + 1;
        const X = (v) => box.x + (v / maxStep) * box.w, Y = (v) => box.y + box.h - ((v - lo) / (hi - lo)) * box.h;
        ctx.fillStyle = "#222222";
        ctx.font = "12px sans-serif";
        ctx.textAlign = "left";
        ctx.textBaseline = "bottom";
        ctx.fillText(`${title}, nats per image`, box.x, box.y - 3);
        drawAxes(ctx, box, { X, Y, xticks: niceTicks(0, maxStep, 4), yticks: niceTicks(lo, hi, 3),
                             xlabel: key === "kl" ? "training step (minibatch)" : "", ylabel: "nats",
                             yfmt: (v) => String(+v.toFixed(1)), ylabelX: 10 });
        ctx.save();
        ctx.beginPath();
        ctx.rect(box.x, box.y, box.w, box.h);
        ctx.clip();
        for (let i = 1; i < hist.length; i++) {    // where beta was changed: a thin grey line
          if (hist[i].beta !== hist[i - 1].beta) {
            ctx.fillStyle = "#999999";
            ctx.fillRect(X(hist[i].step) - 0.5, box.y, 1, box.h);
          }
        }
        if (hist.length) polyline(ctx, hist.map((h) => h.step), ys, X, Y, color, { width: 1.5 });
        ctx.restore();
      }
      curves.setAttribute("aria-label", `Learning curves against the training step: the reconstruction term and ` +
        `the KL term, in nats per image, over ${trainer.steps} steps; now \u03b2 = ${fmtBeta(beta())} and the ` +
        `learning rate ${fmtLr(lr())}; grey lines mark where \u03b2 was changed.`);
    }

    function drawPictures() {
      const zMu = latentMeans(trainer.net, data, showIdx);
      const recon = decodeMeans(trainer.net, Float64Array.from(zMu));
      const samples = decodeMeans(trainer.net, priorZ);
      const scale = Wpx <= 14 ? 5 : 2, gap = 4, caption = 16;
      const w = Math.max(300, nShow * (Wpx * scale + gap)), h = 3 * (Hpx * scale + caption) + 4;
      const ctx = prepareCanvas(pictures, w, h);
      drawImageRows(ctx, [["training images", showInputs, 0], ["their reconstructions", recon, 0],
                          ["decoded from the prior", samples, 0]], nShow, Hpx, Wpx,
                    { scale, gap, caption, gain: 255 });
      pictures.setAttribute("aria-label", `${nShow} training images, their reconstructions from the posterior mean, ` +
        `and ${nShow} images decoded from fixed draws of the prior N(0, I), after ${trainer.steps} training steps.`);
    }

    function drawAll() {
      const sep = drawPlane();
      drawCurves();
      drawPictures();
      const cur = recentLoss(trainer);
      lossBox.setAttribute("data-vaelib-loss", cur.negElbo.toFixed(3));
      lossBox.textContent = Number.isFinite(cur.negElbo)
        ? `\u2212ELBO ${cur.negElbo.toFixed(1)} nats per image` : "\u2212ELBO: not a number";
      status.setAttribute("data-vaelib-separation", sep.toFixed(4));
      status.setAttribute("data-vaelib-kl", cur.kl.toFixed(4));
      const b = beta(), objective = b === 1 ? "" : `; minimised: reconstruction + \u03b2 \u00d7 KL = ` +
        `${(cur.recon + b * cur.kl).toFixed(1)}`;
      status.textContent = `reconstruction ${cur.recon.toFixed(1)} + KL ${cur.kl.toFixed(2)} nats${objective}; ` +
        `${trainer.steps} steps, ${(trainer.images / N).toFixed(1)} passes over the ${N} images; class separation ` +
        `${sep.toFixed(2)} (between-class / within-class variance of the codes z).`;
      lastDraw = performance.now();
    }

    function setRunning(on) {
      running = on;
      trainButton.textContent = on ? "Pause" : "Train";
      if (on && frame === null) frame = requestAnimationFrame(tick);
      if (!on && frame !== null) { cancelAnimationFrame(frame); frame = null; }
    }

    // One animation frame: either redraw the figures (at most every DRAW_MS) or train for about SLICE_MS.
    let stepMs = 0;
    function tick() {
      frame = null;
      if (!running) return;
      if (performance.now() - lastDraw > DRAW_MS) {
        drawAll();
      } else {
        const t0 = performance.now();
        let out = null, now = t0;
        do {
          out = trainStep(trainer, beta(), lr());
          const t1 = performance.now();
          stepMs = t1 - now;
          now = t1;
        } while (Number.isFinite(out.loss) && now - t0 + stepMs < SLICE_MS);
        if (!Number.isFinite(out.loss)) {
          diverged = true;
          setRunning(false);
          drawAll();
          announce.textContent = "Training diverged (the loss is not a number): lower the learning rate and press " +
            "Reset.";
          return;
        }
      }
      frame = requestAnimationFrame(tick);
    }

    trainButton.addEventListener("click", () => {
      if (diverged) return;
      setRunning(!running);
      announce.textContent = running ? "Training." : "Paused.";
      if (!running) drawAll();
    });
    resetButton.addEventListener("click", () => {
      reset();
      drawAll();
      announce.textContent = running ? "New weights; training." : "New weights.";
    });

    function showSliders() {
      syncSlider(sliders.beta.input, sliders.beta.value, model.get("beta_log10"), fmtBeta(beta()));
      syncSlider(sliders.lr.input, sliders.lr.value, model.get("lr_log10"), fmtLr(lr()));
    }
    for (const name of ["beta", "lr"]) {
      bindSlider(model, sliders[name].input, `${name}_log10`, () => { showSliders(); drawCurves(); });
    }

    reset();
    showSliders();
    drawAll();
    const off = onChanges(model, ["beta_log10", "lr_log10"], () => { showSliders(); drawCurves(); });
    return () => { setRunning(false); off(); };
  },
};
