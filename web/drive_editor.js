// InterDyn Drive Editor: draw the driver and its path on the picture, in ComfyUI's page.
//
// A canvas on the "InterDyn Drive Editor" node. Everything it edits lives in the node's own text
// widgets, `shape` and `keyframes` (the formats of interdyn/data/shapes.py and interdyn/data/trajectory.py),
// so a saved workflow and the API format stay plain JSON and run headless; an edit typed in a text
// widget shows up in the canvas, and the other way round. Plain ES module, no build step, nothing
// fetched but ComfyUI's own /view (the Load Image file, or the node's preview after a run).
// The mask drawn here is the node's (drive_model.js mirrors its maths, and is tested against it).
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { EASINGS, interpolate, keysText, normaliseKeys, parseShape, pivotOf, rasterize, round, scaledShape } from "./drive_model.js";

const NODE = "InterDynDriveEditor";
const TOOLS = [["path", "Path", "Click to add a keyframe at the next frame; drag a keyframe to move it; drag the square to scale, the circle to rotate"],
  ["ellipse", "Ellipse", "Drag to draw an ellipse (Shift: a circle)"],
  ["rect", "Rectangle", "Drag to draw a rectangle (Shift: a square)"],
  ["brush", "Brush", "Paint the driver with a round brush"]];
const HIT_PX = 9; // screen pixels within which a keyframe or handle is grabbed

// ---------------------------------------------------------------------------- the editor
function el(tag, props = {}, children = []) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  if (props.style) e.setAttribute("style", props.style);
  for (const c of children) e.append(c);
  return e;
}

class DriveEditor {
  constructor(node) {
    this.node = node;
    this.W = 512; this.H = 512;
    this.bg = null; this.bgKey = null; this.runView = null; this.runMaskImg = null;
    this.tool = "path"; this.frame = 0; this.selected = 0; this.undo = []; this.drag = null; this.error = null;
    this.last = {};
    this.build();
  }

  widget(name) { return this.node.widgets?.find((w) => w.name === name); }
  frames() { return Math.max(1, Number(this.widget("frames")?.value) || 1); }
  maskConnected() { const i = this.node.inputs?.find((x) => x.name === "mask"); return !!(i && i.link != null); }

  build() {
    const bar = el("div", { className: "interdyn-drive-tools", style: "display:flex;flex-wrap:wrap;gap:3px;align-items:center" });
    this.toolButtons = {};
    for (const [id, label, tip] of TOOLS) {
      const b = el("button", { textContent: label, title: tip, className: `interdyn-tool-${id}` });
      b.addEventListener("click", () => { this.tool = id; this.render(); });
      this.toolButtons[id] = b; bar.append(b);
    }
    this.brush = el("input", { type: "number", min: 1, max: 200, value: 6, title: "Brush radius (pixels of the image)", className: "interdyn-brush-radius", style: "width:44px" });
    this.subtract = el("input", { type: "checkbox", title: "Shapes erase instead of add", className: "interdyn-subtract" });
    const undo = el("button", { textContent: "Undo", title: "Undo the last edit (Ctrl+Z)", className: "interdyn-undo" });
    const resetPath = el("button", { textContent: "Reset path", title: "One keyframe at frame 0: the driver stays where it is drawn", className: "interdyn-reset-path" });
    const clear = el("button", { textContent: "Clear shape", title: "Remove every drawn shape", className: "interdyn-clear-shape" });
    undo.addEventListener("click", () => this.popUndo());
    resetPath.addEventListener("click", () => { this.pushUndo(); this.writeKeys([{ frame: 0, x: 0, y: 0, scale: 1, rotation: 0, easing: "linear" }]); this.selected = 0; });
    clear.addEventListener("click", () => { this.pushUndo(); this.writeShape({ size: [this.W, this.H], shapes: [] }); });
    bar.append(el("span", { textContent: "r" }), this.brush, el("label", { textContent: "erase", style: "font-size:11px" }, [this.subtract]), undo, resetPath, clear);

    this.canvas = el("canvas", { className: "interdyn-drive-canvas", style: "flex:1 1 auto;min-height:80px;width:100%;height:100%;object-fit:contain;touch-action:none;cursor:crosshair;background:#222" });
    this.canvas.width = this.W; this.canvas.height = this.H;
    this.scrub = el("input", { type: "range", min: 0, max: 13, value: 0, className: "interdyn-scrub", style: "flex:1", title: "Scrub: the mask at this frame" });
    this.scrubLabel = el("span", { style: "font-size:11px;min-width:70px" });
    this.scrub.addEventListener("input", () => { this.frame = Number(this.scrub.value); this.render(); });
    const scrubRow = el("div", { style: "display:flex;gap:4px;align-items:center" }, [this.scrubLabel, this.scrub]);
    // a fixed height: the picture must not move under the pointer when keyframes are added
    this.timeline = el("div", { className: "interdyn-timeline", style: "flex:0 0 96px;display:flex;flex-direction:column;gap:2px;overflow:auto;font-size:11px" });
    // keyboard focus while drawing: ComfyUI leaves keys typed into an input to it (its Ctrl+Z undoes the graph)
    this.focusInput = el("input", { className: "interdyn-focus", readOnly: true, tabIndex: -1, title: "Drive Editor keys",
      style: "position:absolute;width:1px;height:1px;opacity:0;pointer-events:none" });
    this.status = el("div", { className: "interdyn-status", style: "font-size:11px;opacity:.8;min-height:14px" });
    this.root = el("div", { className: "interdyn-drive-editor", tabIndex: 0,
      style: "position:relative;display:flex;flex-direction:column;gap:3px;width:100%;height:100%;box-sizing:border-box;color:var(--input-text,#ddd);font-family:sans-serif;outline:none" },
    [bar, this.canvas, scrubRow, this.timeline, this.status, this.focusInput]);
    for (const e of ["pointerdown", "pointermove", "pointerup", "pointercancel"]) this.canvas.addEventListener(e, (ev) => this.onPointer(ev));
    this.root.addEventListener("keydown", (ev) => {
      const drawing = ev.target === this.focusInput || !/INPUT|SELECT|TEXTAREA/.test(ev.target.tagName);
      if ((ev.ctrlKey || ev.metaKey) && !ev.shiftKey && ev.key.toLowerCase() === "z" && drawing) {
        ev.preventDefault(); ev.stopPropagation(); this.popUndo();
      }
    });
    // the graph canvas must not pan or select while the pointer works in the editor
    for (const e of ["pointerdown", "mousedown", "wheel"]) this.root.addEventListener(e, (ev) => ev.stopPropagation());
  }

  // ------------------------------------------------------------------ state <-> widgets
  readState() {
    const shapeText = this.widget("shape")?.value ?? "", keysText_ = this.widget("keyframes")?.value ?? "";
    this.error = null;
    try { this.keys = normaliseKeys(JSON.parse(keysText_)); } catch (e) { this.error = `keyframes: ${e.message}`; this.keys = this.keys || [{ frame: 0, x: 0, y: 0, scale: 1, rotation: 0, easing: "linear" }]; }
    try { this.shape = parseShape(shapeText); } catch (e) { this.error = `shape: ${e.message}`; this.shape = this.shape || { size: null, shapes: [] }; }
    this.last = { shape: shapeText, keyframes: keysText_, frames: this.frames(), mask: this.maskConnected() };
    this.selected = Math.min(this.selected, this.keys.length - 1);
    this.updateDriver();
  }

  changedOutside() {
    return this.widget("shape")?.value !== this.last.shape || this.widget("keyframes")?.value !== this.last.keyframes
      || this.frames() !== this.last.frames || this.maskConnected() !== this.last.mask;
  }

  setWidget(name, text) {
    const w = this.widget(name);
    if (!w) return;
    w.value = text;
    w.callback?.(text, app.canvas, this.node);
    this.node.setDirtyCanvas?.(true, true);
  }

  writeKeys(keys) {
    keys.sort((a, b) => a.frame - b.frame);
    this.setWidget("keyframes", keysText(keys));
    this.refresh();
  }

  writeShape(shape) {
    this.setWidget("shape", JSON.stringify({ size: shape.size, shapes: shape.shapes }));
    this.refresh();
  }

  pushUndo() {
    this.undo.push({ shape: this.widget("shape")?.value, keyframes: this.widget("keyframes")?.value });
    if (this.undo.length > 200) this.undo.shift();
  }

  popUndo() {
    const s = this.undo.pop();
    if (!s) { this.say("nothing to undo"); return; }
    this.setWidget("shape", s.shape); this.setWidget("keyframes", s.keyframes); this.refresh();
  }

  say(text) { this.status.textContent = text; }

  // the driver's first-frame mask and pivot, in image pixels
  updateDriver() {
    const W = this.W, H = this.H;
    if (this.maskConnected()) {
      const v = this.runView;
      this.pivot = v && v.from_mask ? v.pivot : [W / 2, H / 2];
      this.maskCanvas = v && v.from_mask && this.runMaskImg ? this.runMaskImg : null;
      return;
    }
    const mask = rasterize(this.shape, W, H);
    this.pivot = pivotOf(mask, W, H);
    this.area = mask.reduce((a, b) => a + b, 0);
    const c = document.createElement("canvas");
    c.width = W; c.height = H;
    const g = c.getContext("2d"), img = g.createImageData(W, H);
    for (let p = 0; p < W * H; p++) if (mask[p]) { img.data[4 * p] = 80; img.data[4 * p + 1] = 200; img.data[4 * p + 2] = 255; img.data[4 * p + 3] = 255; }
    g.putImageData(img, 0, 0);
    this.maskCanvas = c;
  }

  // ------------------------------------------------------------------ the picture
  backgroundSource() {
    const i = this.node.inputs?.findIndex((x) => x.name === "image");
    const origin = i >= 0 && this.node.getInputNode ? this.node.getInputNode(i) : null;
    if (origin && origin.type === "LoadImage") {
      const value = origin.widgets?.find((w) => w.name === "image")?.value;
      if (typeof value === "string" && value) {
        let name = value.replace(/ \[(input|output|temp)\]$/, "");
        const type = (value.match(/ \[(input|output|temp)\]$/) || [null, "input"])[1];
        const cut = name.lastIndexOf("/");
        const subfolder = cut >= 0 ? name.slice(0, cut) : "";
        name = cut >= 0 ? name.slice(cut + 1) : name;
        return api.apiURL(`/view?filename=${encodeURIComponent(name)}&type=${type}&subfolder=${encodeURIComponent(subfolder)}`);
      }
    }
    const b = this.runView && this.runView.background;
    if (b) return api.apiURL(`/view?filename=${encodeURIComponent(b.filename)}&type=${b.type}&subfolder=${encodeURIComponent(b.subfolder || "")}`);
    return null;
  }

  loadBackground() {
    const src = this.backgroundSource();
    if (src === this.bgKey) return;
    this.bgKey = src;
    if (!src) { this.bg = null; return; }
    const img = new Image();
    img.onload = () => {
      if (this.bgKey !== src) return;
      this.bg = img;
      this.setSize(img.naturalWidth, img.naturalHeight);
    };
    img.onerror = () => { if (this.bgKey === src) { this.bg = null; this.say("the picture could not be loaded; run the node once"); } };
    img.src = src;
  }

  setSize(W, H) {
    if (W === this.W && H === this.H) { this.render(); return; }
    this.W = W; this.H = H; this.canvas.width = W; this.canvas.height = H;
    this.updateDriver(); this.render();
  }

  onExecuted(view) {
    this.runView = view;
    if (view && view.size) this.setSize(view.size[0], view.size[1]);
    if (view && view.mask) {
      const img = new Image();
      img.onload = () => { this.runMaskImg = img; this.updateDriver(); this.render(); };
      img.src = api.apiURL(`/view?filename=${encodeURIComponent(view.mask.filename)}&type=${view.mask.type}&subfolder=${encodeURIComponent(view.mask.subfolder || "")}`);
    }
    this.loadBackground();
    this.updateDriver(); this.render();
  }

  refresh() {
    if (this.changedOutside()) this.readState();
    this.loadBackground();
    this.render();
  }

  // ------------------------------------------------------------------ drawing
  params() { return interpolate(this.keys, this.frames()); }

  centreAt(p) { return [this.pivot[0] + p[0], this.pivot[1] + p[1]]; }

  drawMask(g, p, alpha) {
    if (!this.maskCanvas) return;
    const [cx, cy] = this.pivot;
    g.save();
    g.globalAlpha = alpha;
    g.translate(cx + p[0], cy + p[1]);
    g.rotate(p[3] * Math.PI / 180);
    g.scale(p[2], p[2]);
    g.translate(-cx, -cy);
    g.drawImage(this.maskCanvas, 0, 0, this.W, this.H);
    g.restore();
  }

  // handle positions for a keyframe: [scale handle, rotation handle], image pixels
  handles(k) {
    const r = this.handleRadius();
    const c = this.centreAt([k.x, k.y]);
    const a = k.rotation * Math.PI / 180;
    const rot = (dx, dy) => [c[0] + dx * Math.cos(a) - dy * Math.sin(a), c[1] + dx * Math.sin(a) + dy * Math.cos(a)];
    return { centre: c, scale: rot(r * k.scale, r * k.scale), rotate: rot(0, -r * k.scale * 1.5), base: r };
  }

  handleRadius() { return Math.max(6, Math.sqrt((this.area || 100) / Math.PI)) ; }

  pxPerScreen() {
    const r = this.canvas.getBoundingClientRect();
    const s = Math.min(r.width / this.W, r.height / this.H) || 1;
    return 1 / s;
  }

  render({ timeline = true } = {}) {
    const F = this.frames();
    this.scrub.max = String(F - 1);
    if (this.frame > F - 1) this.frame = F - 1;
    this.scrub.value = String(this.frame);
    this.scrubLabel.textContent = `frame ${this.frame} / ${F - 1}`;
    for (const [id, b] of Object.entries(this.toolButtons)) {
      b.style.outline = id === this.tool ? "2px solid #4af" : "";
      b.disabled = id !== "path" && this.maskConnected();
    }
    const g = this.canvas.getContext("2d");
    const W = this.W, H = this.H, u = this.pxPerScreen();
    g.clearRect(0, 0, W, H);
    if (this.bg) g.drawImage(this.bg, 0, 0, W, H);
    else { g.fillStyle = "#333"; g.fillRect(0, 0, W, H); }
    const params = this.params();
    params.forEach((p, f) => { if (f !== this.frame) this.drawMask(g, p, 0.12); }); // ghosts
    this.drawMask(g, params[this.frame], 0.6);
    // the path through every frame's centre
    g.lineWidth = 1.5 * u; g.strokeStyle = "rgba(255,255,255,.8)"; g.beginPath();
    params.forEach((p, f) => { const c = this.centreAt(p); f ? g.lineTo(c[0], c[1]) : g.moveTo(c[0], c[1]); });
    g.stroke();
    g.fillStyle = "#fff";
    for (const p of params) { const c = this.centreAt(p); g.beginPath(); g.arc(c[0], c[1], 2 * u, 0, 2 * Math.PI); g.fill(); }
    // keyframes, the selected one with its handles
    g.font = `${11 * u}px sans-serif`;
    this.keys.forEach((k, i) => {
      const c = this.centreAt([k.x, k.y]);
      g.beginPath(); g.arc(c[0], c[1], 5 * u, 0, 2 * Math.PI);
      g.fillStyle = i === this.selected ? "#fc3" : "#f63"; g.fill();
      g.lineWidth = u; g.strokeStyle = "#000"; g.stroke();
      g.fillStyle = "#fff"; g.fillText(String(k.frame), c[0] + 7 * u, c[1] - 7 * u);
    });
    const k = this.keys[this.selected];
    if (k && this.tool === "path") {
      const h = this.handles(k);
      g.strokeStyle = "#fc3"; g.lineWidth = u;
      g.beginPath(); g.moveTo(h.centre[0], h.centre[1]); g.lineTo(h.rotate[0], h.rotate[1]); g.stroke();
      g.fillStyle = "#fc3";
      g.fillRect(h.scale[0] - 4 * u, h.scale[1] - 4 * u, 8 * u, 8 * u);
      g.beginPath(); g.arc(h.rotate[0], h.rotate[1], 4.5 * u, 0, 2 * Math.PI); g.fill();
    }
    if (this.drag && this.drag.preview) this.drawPreview(g, this.drag.preview, u);
    if (timeline) this.renderTimeline();
    const what = this.maskConnected() ? (this.runView && this.runView.from_mask ? "the connected mask drives" : "a mask is connected: run once to see it")
      : (this.area ? `${this.area} px driver` : "draw the driver (Ellipse, Rectangle, Brush)");
    if (this.error) this.say(`${this.error} (fix the text, or Undo)`);
    else if (!this.bg) this.say(`${what}; connect a Load Image, or run once, to see the picture`);
    else this.say(`${what} · ${W}x${H} · ${this.keys.length} keyframe(s)`);
  }

  drawPreview(g, p, u) {
    g.save(); g.strokeStyle = "#4af"; g.lineWidth = 1.5 * u;
    if (p.type === "ellipse") { g.beginPath(); g.ellipse(p.cx, p.cy, p.rx, p.ry, 0, 0, 2 * Math.PI); g.stroke(); }
    else if (p.type === "rect") g.strokeRect(p.x, p.y, p.w, p.h);
    else { g.lineWidth = 2 * p.radius; g.lineCap = g.lineJoin = "round"; g.globalAlpha = 0.5; g.beginPath();
      p.points.forEach(([x, y], i) => (i ? g.lineTo(x, y) : g.moveTo(x, y))); if (p.points.length === 1) g.lineTo(p.points[0][0] + 0.01, p.points[0][1]); g.stroke(); }
    g.restore();
  }

  renderTimeline() {
    const rows = this.keys.map((k, i) => {
      const num = (cls, value, step, title, set) => {
        const e = el("input", { type: "number", value: String(round(value, 3)), step, title, className: cls, style: "width:52px" });
        e.addEventListener("change", () => set(Number(e.value), e));
        return e;
      };
      const frame = num("interdyn-key-frame", k.frame, 1, "The output frame of this keyframe", (v, e) => {
        const F = this.frames();
        if (!Number.isInteger(v) || v < 0 || v > F - 1 || this.keys.some((o, j) => j !== i && o.frame === v)) {
          this.say(`frame must be a free whole number in 0..${F - 1}`); e.value = String(k.frame); return;
        }
        this.pushUndo(); const keys = this.keys.map((o) => ({ ...o })); keys[i].frame = v; this.frame = v;
        this.writeKeys(keys); this.selected = this.keys.findIndex((o) => o.frame === v); this.render();
      });
      const scale = num("interdyn-key-scale", k.scale, 0.05, "Size factor (1 = as drawn)", (v, e) => {
        if (!(v > 0)) { e.value = String(k.scale); return; }
        this.pushUndo(); const keys = this.keys.map((o) => ({ ...o })); keys[i].scale = v; this.writeKeys(keys);
      });
      const rot = num("interdyn-key-rotation", k.rotation, 5, "Rotation in degrees, clockwise", (v, e) => {
        if (!Number.isFinite(v)) { e.value = String(k.rotation); return; }
        this.pushUndo(); const keys = this.keys.map((o) => ({ ...o })); keys[i].rotation = v; this.writeKeys(keys);
      });
      const easing = el("select", { className: "interdyn-key-easing", title: "How it travels to the next keyframe" },
        EASINGS.map((e) => el("option", { value: e, textContent: e, selected: e === k.easing })));
      easing.addEventListener("change", () => { this.pushUndo(); const keys = this.keys.map((o) => ({ ...o })); keys[i].easing = easing.value; this.writeKeys(keys); });
      const del = el("button", { textContent: "×", title: "Remove this keyframe", className: "interdyn-key-delete", disabled: this.keys.length < 2 });
      del.addEventListener("click", () => { this.pushUndo(); this.writeKeys(this.keys.filter((_, j) => j !== i)); this.selected = 0; this.render(); });
      const row = el("div", { className: "interdyn-key", style: `display:flex;gap:3px;align-items:center;${i === this.selected ? "background:rgba(255,200,50,.15)" : ""}` },
        [el("span", { textContent: "frame" }), frame, el("span", { textContent: `x ${round(k.x, 1)} y ${round(k.y, 1)} ×` }), scale,
          el("span", { textContent: "°" }), rot, easing, del]);
      // select without rebuilding the rows: the field under the pointer must stay to take the focus
      row.addEventListener("pointerdown", () => {
        if (this.selected === i) return;
        this.selected = i; this.frame = k.frame;
        for (const [j, r] of Array.from(this.timeline.children).entries()) r.style.background = j === i ? "rgba(255,200,50,.15)" : "";
        this.render({ timeline: false });
      });
      return row;
    });
    const focused = this.timeline.contains(document.activeElement);
    if (!focused) this.timeline.replaceChildren(...rows);
  }

  // ------------------------------------------------------------------ pointer
  toImage(ev) {
    const r = this.canvas.getBoundingClientRect();
    const s = Math.min(r.width / this.W, r.height / this.H);
    const ox = (r.width - this.W * s) / 2, oy = (r.height - this.H * s) / 2;
    return [(ev.clientX - r.left - ox) / s, (ev.clientY - r.top - oy) / s];
  }

  onPointer(ev) {
    const p = this.toImage(ev), tol = HIT_PX * this.pxPerScreen();
    if (ev.type === "pointerdown") {
      this.focusInput.focus({ preventScroll: true });
      this.canvas.setPointerCapture?.(ev.pointerId);
      ev.preventDefault(); ev.stopPropagation();
      if (this.tool === "path") this.startPath(p, tol);
      else if (!this.maskConnected()) {
        const preview = this.tool === "brush" ? { type: "brush", radius: Math.max(0.5, Number(this.brush.value) || 6), points: [p] }
          : { type: this.tool, x: p[0], y: p[1], w: 0, h: 0, cx: p[0], cy: p[1], rx: 0, ry: 0 };
        this.drag = { kind: "shape", start: p, preview, shift: ev.shiftKey };
      }
      this.render();
      return;
    }
    if (!this.drag) return;
    ev.preventDefault(); ev.stopPropagation();
    if (ev.type === "pointermove") { this.moveDrag(p, ev.shiftKey); this.render(); return; }
    this.endDrag(p, ev.type === "pointercancel");
  }

  startPath(p, tol) {
    const k = this.keys[this.selected];
    if (k) {
      const h = this.handles(k);
      if (Math.hypot(p[0] - h.scale[0], p[1] - h.scale[1]) <= tol) { this.pushUndo(); this.drag = { kind: "scale", index: this.selected, h }; return; }
      if (Math.hypot(p[0] - h.rotate[0], p[1] - h.rotate[1]) <= tol) { this.pushUndo(); this.drag = { kind: "rotate", index: this.selected, h }; return; }
    }
    const hit = this.keys.findIndex((o) => { const c = this.centreAt([o.x, o.y]); return Math.hypot(p[0] - c[0], p[1] - c[1]) <= tol; });
    if (hit >= 0) {
      this.selected = hit; this.frame = this.keys[hit].frame;
      this.pushUndo(); this.drag = { kind: "move", index: hit, start: p, moved: false };
      return;
    }
    // a new keyframe: at the scrubber's frame when it has none, else after the last one
    const F = this.frames();
    let frame = this.frame;
    if (this.keys.some((o) => o.frame === frame)) {
      const last = this.keys[this.keys.length - 1].frame;
      frame = Math.min(F - 1, last + Math.max(1, Math.round((F - 1) / 3)));
      if (this.keys.some((o) => o.frame === frame)) { this.say(`frame ${frame} already has a keyframe: scrub to a free frame, or change frame numbers below`); return; }
    }
    const at = interpolate(this.keys, F)[Math.min(frame, F - 1)];
    this.pushUndo();
    const keys = this.keys.map((o) => ({ ...o }));
    keys.push({ frame, x: p[0] - this.pivot[0], y: p[1] - this.pivot[1], scale: at[2], rotation: at[3], easing: "linear" });
    this.writeKeys(keys);
    this.selected = this.keys.findIndex((o) => o.frame === frame); this.frame = frame;
  }

  moveDrag(p, shift) {
    const d = this.drag;
    if (d.kind === "move" || d.kind === "scale" || d.kind === "rotate") {
      const keys = this.keys.map((o) => ({ ...o })), k = keys[d.index];
      if (d.kind === "move") { k.x = p[0] - this.pivot[0]; k.y = p[1] - this.pivot[1]; d.moved = true; }
      else if (d.kind === "scale") {
        const c = d.h.centre; k.scale = Math.max(0.05, Math.hypot(p[0] - c[0], p[1] - c[1]) / (d.h.base * Math.SQRT2));
      } else {
        const c = d.h.centre; k.rotation = round(Math.atan2(p[1] - c[1], p[0] - c[0]) * 180 / Math.PI + 90, 1);
      }
      this.setWidget("keyframes", keysText(keys)); this.refresh();
      return;
    }
    const s = d.preview;
    if (s.type === "brush") { s.points.push(p); return; }
    let w = p[0] - d.start[0], h = p[1] - d.start[1];
    if (shift) { const m = Math.max(Math.abs(w), Math.abs(h)); w = Math.sign(w || 1) * m; h = Math.sign(h || 1) * m; }
    const x = Math.min(d.start[0], d.start[0] + w), y = Math.min(d.start[1], d.start[1] + h);
    Object.assign(s, { x, y, w: Math.abs(w), h: Math.abs(h), cx: x + Math.abs(w) / 2, cy: y + Math.abs(h) / 2, rx: Math.abs(w) / 2, ry: Math.abs(h) / 2 });
  }

  endDrag(p, cancelled) {
    const d = this.drag;
    this.drag = null;
    if (d.kind !== "shape") { if (d.kind === "move" && !d.moved) this.undo.pop(); this.render(); return; }
    if (cancelled) { this.render(); return; }
    const s = d.preview, r = (v) => round(v, 2);
    let shape;
    if (s.type === "ellipse" && s.rx >= 0.5 && s.ry >= 0.5) shape = { type: "ellipse", cx: r(s.cx), cy: r(s.cy), rx: r(s.rx), ry: r(s.ry) };
    else if (s.type === "rect" && s.w >= 1 && s.h >= 1) shape = { type: "rect", x: r(s.x), y: r(s.y), w: r(s.w), h: r(s.h) };
    else if (s.type === "brush") shape = { type: "brush", radius: r(s.radius), points: s.points.map(([x, y]) => [round(x, 1), round(y, 1)]) };
    if (!shape) { this.say("too small: drag to draw"); this.render(); return; }
    if (this.subtract.checked) shape.subtract = true;
    this.pushUndo();
    // keep the description in this picture's pixels
    const cur = this.shape;
    const sx = cur.size ? this.W / cur.size[0] : 1, sy = cur.size ? this.H / cur.size[1] : 1;
    const shapes = cur.shapes.map((o) => scaledShape(o, sx, sy));
    shapes.push(shape);
    this.writeShape({ size: [this.W, this.H], shapes });
  }
}

// ---------------------------------------------------------------------------- registration
app.registerExtension({
  name: "InterDyn.DriveEditor",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== NODE) return;
    const created = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const r = created?.apply(this, arguments);
      const editor = new DriveEditor(this);
      this.interdynDrive = editor;
      const widget = this.addDOMWidget("drive_editor", "interdyn_drive_editor", editor.root, {
        serialize: false, hideOnZoom: false,
        getMinHeight: () => 320, getHeight: () => 420,
        getValue: () => undefined, setValue: () => {},
      });
      widget.serialize = false; // not in widgets_values: the other widgets keep their saved positions
      editor.widget_ = widget;
      for (const name of ["shape", "keyframes"]) {
        const w = this.widgets?.find((x) => x.name === name);
        const input = w && (w.inputEl || w.element);
        if (input && input.addEventListener) input.addEventListener("input", () => editor.refresh());
      }
      editor.readState(); editor.render();
      editor.timer = setInterval(() => { if (editor.changedOutside()) editor.refresh(); else if (editor.backgroundSource() !== editor.bgKey) editor.loadBackground(); }, 400);
      if (this.size[0] < 460 || this.size[1] < 700) this.setSize([Math.max(this.size[0], 460), Math.max(this.size[1], 700)]);
      return r;
    };
    const removed = nodeType.prototype.onRemoved;
    nodeType.prototype.onRemoved = function () {
      if (this.interdynDrive) clearInterval(this.interdynDrive.timer);
      return removed?.apply(this, arguments);
    };
    const configured = nodeType.prototype.onConfigure;
    nodeType.prototype.onConfigure = function () {
      const r = configured?.apply(this, arguments);
      if (this.interdynDrive) { this.interdynDrive.undo = []; this.interdynDrive.refresh(); }
      return r;
    };
    const executed = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      const r = executed?.apply(this, arguments);
      const view = message && message.interdyn_drive && message.interdyn_drive[0];
      if (view && this.interdynDrive) this.interdynDrive.onExecuted(view);
      return r;
    };
  },
});
