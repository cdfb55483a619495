// The Drive Editor's model: the node's maths mirrored in the page (no DOM, no ComfyUI here, so that
// tests/test_drive_editor.py can run it under node and compare it with interdyn/data/shapes.py and
// interdyn/data/trajectory.py on the same inputs).
//
// A pixel belongs to a shape when its centre (j + 0.5, i + 0.5) does; the driver pivots on its
// bounding box's centre; keyframes move that centre by (x, y) pixels, scale it geometrically and
// rotate it clockwise, with the node's easings.
export const EASINGS = ["linear", "ease_in", "ease_out", "ease_in_out", "hold"];

export function parseShape(text) {
  const data = JSON.parse(text);
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

export function scaledShape(s, sx, sy) {
  if (sx === 1 && sy === 1) return s;
  const k = (sx + sy) / 2;
  if (s.type === "ellipse") return { ...s, cx: s.cx * sx, cy: s.cy * sy, rx: s.rx * sx, ry: s.ry * sy };
  if (s.type === "rect") return { ...s, x: s.x * sx, y: s.y * sy, w: s.w * sx, h: s.h * sy };
  return { ...s, radius: s.radius * k, points: s.points.map(([x, y]) => [x * sx, y * sy]) };
}

function segmentDistance(px, py, a, b) {
  const dx = b[0] - a[0], dy = b[1] - a[1];
  const l2 = dx * dx + dy * dy;
  if (l2 === 0) return Math.hypot(px - a[0], py - a[1]);
  const t = Math.min(1, Math.max(0, ((px - a[0]) * dx + (py - a[1]) * dy) / l2));
  return Math.hypot(px - (a[0] + t * dx), py - (a[1] + t * dy));
}

// the shape's pixels in a W x H image, as 0/1 bytes (row-major)
export function rasterize(shape, W, H) {
  const mask = new Uint8Array(W * H);
  const sx = shape.size ? W / shape.size[0] : 1, sy = shape.size ? H / shape.size[1] : 1;
  for (const raw of shape.shapes) {
    const s = scaledShape(raw, sx, sy);
    let box;
    if (s.type === "ellipse") box = [s.cx - s.rx, s.cy - s.ry, s.cx + s.rx, s.cy + s.ry];
    else if (s.type === "rect") box = [s.x, s.y, s.x + s.w, s.y + s.h];
    else {
      const xs = s.points.map((p) => p[0]), ys = s.points.map((p) => p[1]);
      box = [Math.min(...xs) - s.radius, Math.min(...ys) - s.radius, Math.max(...xs) + s.radius, Math.max(...ys) + s.radius];
    }
    const j0 = Math.max(0, Math.floor(box[0] - 0.5)), j1 = Math.min(W, Math.ceil(box[2] + 0.5));
    const i0 = Math.max(0, Math.floor(box[1] - 0.5)), i1 = Math.min(H, Math.ceil(box[3] + 0.5));
    const value = s.subtract ? 0 : 1;
    for (let i = i0; i < i1; i++) {
      const py = i + 0.5;
      for (let j = j0; j < j1; j++) {
        const px = j + 0.5;
        let inside;
        if (s.type === "ellipse") inside = ((px - s.cx) / s.rx) ** 2 + ((py - s.cy) / s.ry) ** 2 <= 1;
        else if (s.type === "rect") inside = px >= s.x && px <= s.x + s.w && py >= s.y && py <= s.y + s.h;
        else {
          inside = false;
          const pts = s.points.length > 1 ? s.points : [s.points[0], s.points[0]];
          for (let k = 0; k + 1 < pts.length && !inside; k++) inside = segmentDistance(px, py, pts[k], pts[k + 1]) <= s.radius;
        }
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

export function normaliseKeys(data) {
  if (data && !Array.isArray(data) && typeof data === "object") data = data.keyframes || [data];
  if (!Array.isArray(data) || !data.length) throw new Error("keyframes must be a non-empty list");
  const keys = data.map((k) => ({ frame: k.frame, x: k.x ?? 0, y: k.y ?? 0, scale: k.scale ?? 1, rotation: k.rotation ?? 0,
    easing: k.easing ?? "linear" }));
  for (const k of keys) {
    if (!Number.isInteger(k.frame) || k.frame < 0) throw new Error(`keyframe frame ${k.frame} must be an integer >= 0`);
    if (![k.x, k.y, k.scale, k.rotation].every(Number.isFinite) || k.scale <= 0) throw new Error("keyframe values must be finite, scale > 0");
    if (!EASINGS.includes(k.easing)) throw new Error(`unknown easing ${k.easing}`);
  }
  for (let i = 1; i < keys.length; i++) if (keys[i].frame <= keys[i - 1].frame) throw new Error("keyframe frames must increase");
  return keys;
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

export function keysText(keys) {
  return "[\n" + keys.map((k) => " " + JSON.stringify({ frame: k.frame, x: round(k.x), y: round(k.y), scale: round(k.scale, 4),
    rotation: round(k.rotation), easing: k.easing })).join(",\n") + "\n]";
}

