// The Drive Editor's model: the node's maths mirrored in the page (no DOM, no ComfyUI here, so that
// tests/test_drive_editor.py can run it under node and compare it with interdyn/data/shapes.py and
// interdyn/data/trajectory.py on the same inputs).
//
// A pixel belongs to a shape when its centre (j + 0.5, i + 0.5) does; the driver pivots on its
// bounding box's centre; keyframes move that centre by (x, y) pixels, scale it geometrically and
// rotate it clockwise, with the node's easings. A drawing (and a path) made on a picture of another
// size is fitted to the picture as the node fits it (fitShape, fitKeys).
export const EASINGS = ["linear", "ease_in", "ease_out", "ease_in_out", "hold"];
export const SCALE_RANGE = [0.001, 1000];

export function parseShape(text) {
  const data = typeof text === "string" ? JSON.parse(text) : text;
  let size = null;
  let shapes = data;
  if (data && !Array.isArray(data) && typeof data === "object") {
    size = Array.isArray(data.size) ? data.size.map(Number) : null;
    shapes = data.shapes;
  }
  if (!Array.isArray(shapes)) throw new Error("shape must hold a list of shapes");
  for (const s of shapes) {
    if (!s || !["ellipse", "rect", "brush"].includes(s.type)) throw new Error(`unknown shape ${JSON.stringify(s)}`);
  }
  return { size, shapes };
}

// the same aspect ratio: every coordinate and length times the ratio (shapes.py: _scaled)
export function scaledShape(s, sx, sy) {
  if (sx === 1 && sy === 1) return s;
  const k = (sx + sy) / 2;
  if (s.type === "ellipse") return { ...s, cx: s.cx * sx, cy: s.cy * sy, rx: s.rx * sx, ry: s.ry * sy };
  if (s.type === "rect") return { ...s, x: s.x * sx, y: s.y * sy, w: s.w * sx, h: s.h * sy };
  return { ...s, radius: s.radius * k, points: s.points.map(([x, y]) => [x * sx, y * sy]) };
}

// bounding box [x0, y0, x1, y1] of the shapes that add pixels, or null (shapes.py: _extent)
function extent(shapes) {
  let box = null;
  for (const s of shapes) {
    if (s.subtract) continue;
    let b;
    if (s.type === "ellipse") b = [s.cx - s.rx, s.cy - s.ry, s.cx + s.rx, s.cy + s.ry];
    else if (s.type === "rect") b = [s.x, s.y, s.x + s.w, s.y + s.h];
    else {
      const xs = s.points.map((p) => p[0]), ys = s.points.map((p) => p[1]);
      b = [Math.min(...xs) - s.radius, Math.min(...ys) - s.radius, Math.max(...xs) + s.radius, Math.max(...ys) + s.radius];
    }
    box = box ? [Math.min(box[0], b[0]), Math.min(box[1], b[1]), Math.max(box[2], b[2]), Math.max(box[3], b[3])] : b;
  }
  return box;
}

// another aspect ratio: the anchor goes to `to`, everything scales by k about it (shapes.py: _anchored)
function anchoredShape(s, [ax, ay], [tx, ty], k) {
  if (s.type === "ellipse") return { ...s, cx: tx + k * (s.cx - ax), cy: ty + k * (s.cy - ay), rx: s.rx * k, ry: s.ry * k };
  if (s.type === "rect") return { ...s, x: tx + k * (s.x - ax), y: ty + k * (s.y - ay), w: s.w * k, h: s.h * k };
  return { ...s, radius: s.radius * k, points: s.points.map(([x, y]) => [tx + k * (x - ax), ty + k * (y - ay)]) };
}

// the drawing in pixels of a W x H picture (shapes.py: fit_shape): unchanged without a size or at that size;
// the same aspect: scaled; another: its box's centre keeps its place in the picture, the drawing its proportions
export function fitShape(shape, W, H) {
  const size = shape.size;
  const out = { size: [W, H], shapes: shape.shapes };
  if (!size || (size[0] === W && size[1] === H)) return out;
  const sx = W / size[0], sy = H / size[1];
  if (sx === sy) return { size: [W, H], shapes: shape.shapes.map((s) => scaledShape(s, sx, sy)) };
  const box = extent(shape.shapes);
  const anchor = box ? [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2] : [size[0] / 2, size[1] / 2];
  const k = Math.sqrt(sx * sy);
  return { size: [W, H], shapes: shape.shapes.map((s) => anchoredShape(s, anchor, [anchor[0] * sx, anchor[1] * sy], k)) };
}

// the x-range [lo, hi] of the capsule around segment a-b (radius r) on the line at height y (shapes.py: _capsule_span)
function capsuleSpan(ax, ay, bx, by, r, y) {
  const rr = r * r;
  let lo = Infinity, hi = -Infinity;
  for (const [cx, cy] of [[ax, ay], [bx, by]]) {
    const e = y - cy;
    const q = rr - e * e;
    if (q >= 0) { const h = Math.sqrt(q); lo = Math.min(lo, cx - h); hi = Math.max(hi, cx + h); }
  }
  const dx = bx - ax, dy = by - ay;
  const l2 = dx * dx + dy * dy;
  const rl = r * Math.sqrt(l2);
  const e = y - ay;
  let bandLo = -Infinity, bandHi = Infinity;
  for (const [k, cLo, cHi] of [[dx, -(e * dy), l2 - e * dy], [dy, e * dx - rl, e * dx + rl]]) {
    const p = ax + cLo / k, q = ax + cHi / k;
    if (k > 0) { bandLo = Math.max(bandLo, p); bandHi = Math.min(bandHi, q); }
    else if (k < 0) { bandLo = Math.max(bandLo, q); bandHi = Math.min(bandHi, p); }
    else if (!(cLo <= 0 && 0 <= cHi)) { bandLo = Infinity; bandHi = -Infinity; }
  }
  if (l2 > 0 && bandLo <= bandHi) { lo = Math.min(lo, bandLo); hi = Math.max(hi, bandHi); }
  return [lo, hi];
}

// a brush stroke, row by row (shapes.py: _stroke_inside): each segment's span on each row it crosses
function paintStroke(mask, s, W, H, value) {
  const pts = s.points.length > 1 ? s.points : [s.points[0], s.points[0]];
  const r = s.radius;
  const spans = [];
  let i0 = Infinity, i1 = -Infinity, j0 = Infinity, j1 = -Infinity;
  for (let k = 0; k + 1 < pts.length; k++) {
    const [ax, ay] = pts[k], [bx, by] = pts[k + 1];
    const top = Math.min(H, Math.max(0, Math.ceil(Math.min(ay, by) - r - 0.5)));
    const bottom = Math.min(H - 1, Math.max(-1, Math.floor(Math.max(ay, by) + r - 0.5)));
    for (let row = top; row <= bottom; row++) {
      const [lo, hi] = capsuleSpan(ax, ay, bx, by, r, row + 0.5);
      const a = Math.min(W, Math.max(0, Math.ceil(lo - 0.5))), b = Math.min(W - 1, Math.max(-1, Math.floor(hi - 0.5)));
      if (a > b) continue;
      spans.push(row, a, b);
      i0 = Math.min(i0, row); i1 = Math.max(i1, row); j0 = Math.min(j0, a); j1 = Math.max(j1, b);
    }
  }
  if (!spans.length) return;
  const w = j1 - j0 + 2;
  const diff = new Int32Array((i1 - i0 + 1) * w);
  for (let n = 0; n < spans.length; n += 3) { diff[(spans[n] - i0) * w + spans[n + 1] - j0] += 1; diff[(spans[n] - i0) * w + spans[n + 2] - j0 + 1] -= 1; }
  for (let i = i0; i <= i1; i++) {
    let run = 0;
    for (let j = j0; j <= j1; j++) { run += diff[(i - i0) * w + j - j0]; if (run > 0) mask[i * W + j] = value; }
  }
}

// the shape's pixels in a W x H image, as 0/1 bytes (row-major)
export function rasterize(shape, W, H) {
  const mask = new Uint8Array(W * H);
  for (const s of fitShape(shape, W, H).shapes) {
    const value = s.subtract ? 0 : 1;
    if (s.type === "brush") { paintStroke(mask, s, W, H, value); continue; }
    const box = s.type === "ellipse" ? [s.cx - s.rx, s.cy - s.ry, s.cx + s.rx, s.cy + s.ry] : [s.x, s.y, s.x + s.w, s.y + s.h];
    const j0 = Math.max(0, Math.floor(box[0] - 0.5)), j1 = Math.min(W, Math.ceil(box[2] + 0.5));
    const i0 = Math.max(0, Math.floor(box[1] - 0.5)), i1 = Math.min(H, Math.ceil(box[3] + 0.5));
    for (let i = i0; i < i1; i++) {
      const py = i + 0.5;
      for (let j = j0; j < j1; j++) {
        const px = j + 0.5;
        const inside = s.type === "ellipse" ? ((px - s.cx) / s.rx) ** 2 + ((py - s.cy) / s.ry) ** 2 <= 1
          : px >= s.x && px <= s.x + s.w && py >= s.y && py <= s.y + s.h;
        if (inside) mask[i * W + j] = value;
      }
    }
  }
  return mask;
}

// centre of the bounding box of the non-zero pixels (the image centre for an empty mask)
export function pivotOf(mask, W, H) {
  let r0 = H, r1 = -1, c0 = W, c1 = -1;
  for (let i = 0; i < H; i++) {
    for (let j = 0; j < W; j++) {
      if (mask[i * W + j]) { r0 = Math.min(r0, i); r1 = Math.max(r1, i); c0 = Math.min(c0, j); c1 = Math.max(c1, j); }
    }
  }
  if (r1 < 0) return [W / 2, H / 2];
  return [(c0 + c1 + 1) / 2, (r0 + r1 + 1) / 2];
}

export function ease(t, easing) {
  t = Math.min(1, Math.max(0, t));
  if (easing === "ease_in") return t ** 3;
  if (easing === "ease_out") return 1 - (1 - t) ** 3;
  if (easing === "ease_in_out") return t < 0.5 ? 4 * t ** 3 : 1 - (-2 * t + 2) ** 3 / 2;
  if (easing === "hold") return t < 1 ? 0 : 1;
  return t;
}

// keyframes and the picture size their offsets refer to (null: the picture's own), from the parsed widget text:
// a list, one object, or {"size": [W, H], "keyframes": [...]} (trajectory.py: read_keyframes)
export function readKeys(data) {
  let size = null;
  if (data && !Array.isArray(data) && typeof data === "object") {
    if (Array.isArray(data.keyframes)) { size = Array.isArray(data.size) ? data.size.map(Number) : null; data = data.keyframes; }
    else data = [data];
  }
  if (!Array.isArray(data) || !data.length) throw new Error("keyframes must be a non-empty list");
  const keys = data.map((k) => ({ frame: k.frame, x: k.x ?? 0, y: k.y ?? 0, scale: k.scale ?? 1, rotation: k.rotation ?? 0,
    easing: k.easing ?? "linear" }));
  for (const k of keys) {
    if (!Number.isInteger(k.frame) || k.frame < 0) throw new Error(`keyframe frame ${k.frame} must be an integer >= 0`);
    if (![k.x, k.y, k.scale, k.rotation].every(Number.isFinite) || k.scale <= 0) throw new Error("keyframe values must be finite, scale > 0");
    // the node's bounds (trajectory.py: MAX_OFFSET, SCALE_RANGE, MAX_ROTATION)
    if (Math.abs(k.x) > 1e6 || Math.abs(k.y) > 1e6) throw new Error(`keyframe at frame ${k.frame}: x and y must be within 1e6 pixels`);
    if (k.scale < SCALE_RANGE[0] || k.scale > SCALE_RANGE[1]) throw new Error(`keyframe at frame ${k.frame}: scale must be between 0.001 and 1000`);
    if (Math.abs(k.rotation) > 1e6) throw new Error(`keyframe at frame ${k.frame}: rotation must be within 1e6 degrees`);
    if (!EASINGS.includes(k.easing)) throw new Error(`unknown easing ${k.easing}`);
  }
  for (let i = 1; i < keys.length; i++) if (keys[i].frame <= keys[i - 1].frame) throw new Error("keyframe frames must increase");
  if (size && !(size.length === 2 && size.every((v) => Number.isFinite(v) && v > 0))) throw new Error("keyframes size must be [width, height]");
  return { keys, size };
}

export function normaliseKeys(data) { return readKeys(data).keys; }

// offsets drawn on a `size` picture -> pixels of a W x H one (trajectory.py: fit_keyframes)
export function fitKeys(keys, size, W, H) {
  if (!size || (size[0] === W && size[1] === H)) return keys;
  const sx = W / size[0], sy = H / size[1];
  return keys.map((k) => ({ ...k, x: k.x * sx, y: k.y * sy }));
}

// per-frame [x, y, scale, rotation], as interdyn.data.trajectory.interpolate_keyframes
export function interpolate(keys, frames) {
  const v = keys.map((k) => [k.x, k.y, Math.log(k.scale), k.rotation]);
  const out = [];
  for (let f = 0; f < frames; f++) {
    let row = v[0];
    if (f >= keys[keys.length - 1].frame) row = v[v.length - 1];
    for (let i = 0; i + 1 < keys.length; i++) {
      const a = keys[i], b = keys[i + 1];
      if (f >= a.frame && f < b.frame) {
        const w = ease((f - a.frame) / (b.frame - a.frame), a.easing);
        row = v[i].map((x, c) => x + w * (v[i + 1][c] - x));
      }
    }
    out.push([row[0], row[1], Math.exp(row[2]), row[3]]);
  }
  return out;
}

export const round = (x, d = 2) => Math.round(x * 10 ** d) / 10 ** d;

// the keyframes widget's text: with the picture size when given (what the editor writes)
export function keysText(keys, size = null) {
  const rows = keys.map((k) => " " + JSON.stringify({ frame: k.frame, x: round(k.x), y: round(k.y), scale: round(k.scale, 4),
    rotation: round(k.rotation), easing: k.easing })).join(",\n");
  return size ? `{"size": [${size[0]}, ${size[1]}], "keyframes": [\n${rows}\n]}` : `[\n${rows}\n]`;
}

// up to `limit` pixel centres of a mask, evenly picked (for the out-of-picture estimate below)
export function samplePixels(mask, W, H, limit = 4096) {
  const all = [];
  for (let p = 0; p < W * H; p++) if (mask[p]) all.push(p);
  const step = Math.max(1, Math.ceil(all.length / limit));
  const out = [];
  for (let n = 0; n < all.length; n += step) out.push([(all[n] % W) + 0.5, Math.floor(all[n] / W) + 0.5]);
  return out;
}

// per frame, the share of the driver inside the picture relative to frame 0 (the node warns below 0.5:
// trajectory.py: drive_warnings counts pixels, this counts sampled pixel centres moved forward)
export function insideShare(points, pivot, params, W, H) {
  const counts = params.map(([x, y, s, deg]) => {
    const a = deg * Math.PI / 180, c = Math.cos(a), n = Math.sin(a);
    let k = 0;
    for (const [px, py] of points) {
      const dx = (px - pivot[0]) * s, dy = (py - pivot[1]) * s;
      const qx = pivot[0] + x + c * dx - n * dy, qy = pivot[1] + y + n * dx + c * dy;
      if (qx >= 0 && qx <= W && qy >= 0 && qy <= H) k++;
    }
    return k;
  });
  return counts.map((k) => (counts[0] ? k / counts[0] : 0));
}
