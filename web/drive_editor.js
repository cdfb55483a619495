// InterDyn Drive Editor: draw the driver and its path on the picture, in ComfyUI's page.
//
// A canvas on the "InterDyn Drive Editor" node. Everything it edits lives in the node's own text
// widgets, `shape` and `keyframes` (the formats of interdyn/data/shapes.py and interdyn/data/trajectory.py),
// so a saved workflow and the API format stay plain JSON and run headless; an edit typed in a text
// widget shows up in the canvas, and the other way round. The two text widgets are folded away behind
// the "JSON" button. Plain ES module, no build step, nothing fetched but ComfyUI's own /view (the Load
// Image file, or the node's preview after a run). The mask drawn here is the node's (drive_model.js
// mirrors its maths, and is tested against it).
//
// What the artist sees:
//   the picture     the driver at the scrubbed frame, ghosts at the others, the path, the keyframes (a key whose
//                   centre lies off the picture is drawn on its edge, hollow, and can be dragged in); the selected
//                   key's scale (square) and rotation (circle) handles, kept inside the picture
//   the timeline    one mark per key (drag it in time), the scrubber, each segment's easing drawn as its curve
//   the list        every key's frame, scale, rotation and easing; keys past the last frame flagged
//   message line    why a click did nothing (no free frame, off the picture, ...): stays until the next action
//   status line     what drives, the picture size, the warnings the node will give (keys past the last frame,
//                   a driver leaving the picture), the last run's warnings and notes
// Path tools as in the KJNodes Spline Editor: click adds a key (at the scrubbed frame when it is free), Shift-click
// appends one after the last, Ctrl-click inserts one between the two nearest keys, right-click on a key or Delete
// removes it; right-click elsewhere opens the menu (Reset path, Clear shape, the selected segment's easing).
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import {
  EASINGS, fitKeys, fitShape, insideShare, interpolate, keysText, parseShape, pivotOf, rasterize, readKeys, round, samplePixels,
} from "./drive_model.js";

const NODE = "InterDynDriveEditor";
const TOOLS = [["path", "Path", "Click: a keyframe (at the scrubbed frame when free). Shift-click: append after the last. Ctrl-click: insert between the two nearest. Right-click a key or Delete: remove it. Drag a key to move it, the square to scale, the circle to rotate"],
  ["ellipse", "Ellipse", "Drag to draw an ellipse (Shift: a circle)"],
  ["rect", "Rectangle", "Drag to draw a rectangle (Shift: a square)"],
  ["brush", "Brush", "Paint the driver with a round brush"]];
const HIT_PX = 9; // screen pixels within which a keyframe, handle or timeline mark is grabbed
const EDGE_PX = 8; // screen pixels: keys off the picture and handles are drawn this far inside its edge
const STRIP_PAD = 12; // screen pixels of the timeline before frame 0 and after the last frame
const EASE_COLOURS = { linear: "#9ab", ease_in: "#6cf", ease_out: "#fc6", ease_in_out: "#c9f", hold: "#f77" };
const EASE_LABELS = { linear: "linear", ease_in: "in", ease_out: "out", ease_in_out: "in-out", hold: "hold" };
const DEFAULT_SIZE = [660, 820]; // a new node: the picture gets about 620 px of width

function el(tag, props = {}, children = []) {
  const e = document.createElement(tag);
  Object.assign(e, props);
  if (props.style) e.setAttribute("style", props.style);
  for (const c of children) e.append(c);
  return e;
}

const frameList = (frames) => { // [3, 4, 5, 9] -> "3-5, 9"
  const runs = [];
  for (let i = 0; i < frames.length; i++) {
    let j = i;
    while (j + 1 < frames.length && frames[j + 1] === frames[j] + 1) j++;
    runs.push(i === j ? `${frames[i]}` : `${frames[i]}-${frames[j]}`);
    i = j;
  }
  return runs.join(", ");
};

const roundShape = (s) => { // a fitted shape as the editor stores a drawn one: 0.01 px
  const r = (v) => round(v, 2), len = (v) => Math.max(0.01, round(v, 2));
  if (s.type === "ellipse") return { ...s, cx: r(s.cx), cy: r(s.cy), rx: len(s.rx), ry: len(s.ry) };
  if (s.type === "rect") return { ...s, x: r(s.x), y: r(s.y), w: len(s.w), h: len(s.h) };
  return { ...s, radius: len(s.radius), points: s.points.map(([x, y]) => [r(x), r(y)]) };
};

class DriveEditor {
  constructor(node) {
    this.node = node;
    this.W = 512; this.H = 512; this.known = false;
    this.bg = null; this.bgKey = null; this.runView = null; this.runMaskImg = null; this.runMask = null;
    this.tool = "path"; this.frame = 0; this.selected = 0; this.undo = []; this.drag = null; this.error = null;
    this.last = {}; this.keys = null; this.shape = null; this.keysSize = null; this.shapeSize = null; this.samples = [];
    this.build();
  }

  widget(name) { return this.node.widgets?.find((w) => w.name === name); }
  frames() { return Math.max(1, Number(this.widget("frames")?.value) || 1); }
  connected(name) {
    const i = this.node.inputs?.findIndex((x) => x.name === name) ?? -1;
    return i >= 0 && !!this.node.isInputConnected?.(i);
  }
  maskConnected() { return this.connected("mask"); }
  trackConnected() { return this.connected("coordinates"); }

  // ------------------------------------------------------------------ the DOM
  build() {
    const bar = el("div", { className: "interdyn-drive-tools", style: "display:flex;flex-wrap:wrap;gap:3px;align-items:center;flex:none" });
    this.toolButtons = {};
    for (const [id, label, tip] of TOOLS) {
      const b = el("button", { textContent: label, title: tip, className: `interdyn-tool-${id}` });
      b.addEventListener("click", () => {
        if (id !== "path" && this.maskConnected()) { this.say("a mask is connected: it replaces the drawn shape (disconnect it to draw one)"); return; }
        this.tool = id; this.render();
      });
      this.toolButtons[id] = b; bar.append(b);
    }
    this.brush = el("input", { type: "number", min: 1, max: 200, value: 6, title: "Brush radius (pixels of the image)", className: "interdyn-brush-radius", style: "width:44px" });
    this.subtract = el("input", { type: "checkbox", title: "Shapes erase instead of add", className: "interdyn-subtract" });
    const undo = el("button", { textContent: "Undo", title: "Undo the last edit (Ctrl+Z)", className: "interdyn-undo" });
    const resetPath = el("button", { textContent: "Reset path", title: "One keyframe at frame 0: the driver stays where it is drawn", className: "interdyn-reset-path" });
    const clear = el("button", { textContent: "Clear shape", title: "Remove every drawn shape", className: "interdyn-clear-shape" });
    this.jsonButton = el("button", { className: "interdyn-json-toggle", title: "Show or hide the shape and keyframes text widgets (what the editor writes)" });
    undo.addEventListener("click", () => this.popUndo());
    resetPath.addEventListener("click", () => this.resetPath());
    clear.addEventListener("click", () => this.clearShape());
    this.jsonButton.addEventListener("click", () => this.showJson(!this.jsonShown()));
    bar.append(el("span", { textContent: "r" }), this.brush, el("label", { textContent: "erase", style: "font-size:11px" }, [this.subtract]),
      undo, resetPath, clear, this.jsonButton);

    // the picture: flex 1 and allowed to shrink first, so the lines below it never overlap
    // drawn at the screen's resolution (crisp at any zoom); the picture centred in it at the largest scale that fits
    this.canvas = el("canvas", { className: "interdyn-drive-canvas", style: "flex:1 1 0;min-height:60px;width:100%;touch-action:none;cursor:crosshair;background:#222" });
    this.strip = el("canvas", { className: "interdyn-timeline-strip", title: "Timeline: drag a key's mark in time, click or drag elsewhere to scrub; the curves are the easings",
      style: "flex:0 0 40px;height:40px;width:100%;touch-action:none;cursor:pointer;background:#1b1b1b;border-radius:3px" });
    this.scrubLabel = el("span", { className: "interdyn-frame-label", style: "font-size:11px;white-space:nowrap" });
    // fixed heights below the picture: it must not move under the pointer when keys are added or a message shows
    this.list = el("div", { className: "interdyn-timeline", style: "flex:0 0 94px;display:flex;flex-direction:column;gap:2px;overflow-y:auto;font-size:11px" });
    // keyboard focus while drawing: ComfyUI leaves keys typed into an input to it (its Ctrl+Z undoes the graph, Delete removes nodes)
    this.focusInput = el("input", { className: "interdyn-focus", readOnly: true, tabIndex: -1, title: "Drive Editor keys",
      style: "position:absolute;width:1px;height:1px;opacity:0;pointer-events:none" });
    const line = (lines) => `flex:0 0 ${14 * lines}px;line-height:14px;font-size:11px;overflow:hidden;`;
    this.messageEl = el("div", { className: "interdyn-message", style: `${line(1)}white-space:nowrap;text-overflow:ellipsis;color:#fc6` });
    this.status = el("div", { className: "interdyn-status", style: `${line(2)}opacity:.85` });
    this.runEl = el("div", { className: "interdyn-run", style: `${line(3)}color:#f96` });
    this.menu = el("div", { className: "interdyn-menu", style: "display:none;position:absolute;z-index:10;background:#2a2a2a;border:1px solid #555;border-radius:4px;padding:3px 0;font-size:12px;min-width:170px;box-shadow:0 2px 8px #000" });
    this.root = el("div", { className: "interdyn-drive-editor", tabIndex: 0,
      style: "position:relative;display:flex;flex-direction:column;gap:3px;width:100%;height:100%;box-sizing:border-box;overflow:hidden;color:var(--input-text,#ddd);font-family:sans-serif;outline:none" },
    [bar, this.canvas, el("div", { style: "display:flex;gap:6px;align-items:center;flex:none" }, [this.scrubLabel, el("span", { style: "font-size:10px;opacity:.6", textContent: "drag marks in time · click to scrub" })]),
      this.strip, this.list, this.messageEl, this.status, this.runEl, this.focusInput, this.menu]);
    for (const e of ["pointerdown", "pointermove", "pointerup", "pointercancel"]) {
      this.canvas.addEventListener(e, (ev) => this.onPointer(ev));
      this.strip.addEventListener(e, (ev) => this.onStrip(ev));
    }
    // the next action clears the last refusal (the action may give its own)
    this.root.addEventListener("pointerdown", (ev) => {
      if (!this.menu.contains(ev.target)) this.closeMenu();
      this.say("");
    }, true);
    this.root.addEventListener("contextmenu", (ev) => { ev.preventDefault(); ev.stopPropagation(); });
    this.root.addEventListener("keydown", (ev) => this.onKey(ev));
    // the graph canvas must not pan or select while the pointer works in the editor
    for (const e of ["pointerdown", "mousedown", "wheel"]) this.root.addEventListener(e, (ev) => ev.stopPropagation());
  }

  onKey(ev) {
    const drawing = ev.target === this.focusInput || !/INPUT|SELECT|TEXTAREA/.test(ev.target.tagName);
    if (!drawing) return;
    this.say("");
    if ((ev.ctrlKey || ev.metaKey) && !ev.shiftKey && ev.key.toLowerCase() === "z") {
      ev.preventDefault(); ev.stopPropagation(); this.popUndo();
    } else if (ev.key === "Delete" || ev.key === "Backspace") {
      ev.preventDefault(); ev.stopPropagation(); this.removeKey(this.selected);
    } else if (ev.key === "Escape") {
      this.closeMenu();
    }
  }

  // ------------------------------------------------------------------ the JSON widgets, folded by default
  jsonShown() { return !!this.node.properties?.interdyn_show_json; }

  showJson(show) {
    this.node.properties = this.node.properties || {};
    this.node.properties.interdyn_show_json = !!show;
    this.applyJson();
    const min = this.node.computeSize?.();
    if (show && min) this.node.setSize([Math.max(this.node.size[0], min[0]), Math.max(this.node.size[1], min[1])]);
    this.node.setDirtyCanvas?.(true, true);
  }

  applyJson() {
    const show = this.jsonShown();
    for (const name of ["shape", "keyframes"]) {
      const w = this.widget(name);
      if (!w) continue;
      w.hidden = !show;
      // frontend 1.27 lays out hidden DOM widgets too (1.58 skips them): a folded one asks for no height there
      if (w.computeLayoutSize && !w.interdynLayout) {
        const own = w.computeLayoutSize;
        w.interdynLayout = true;
        w.computeLayoutSize = function (node) { return this.hidden ? { minHeight: 0, maxHeight: 0, minWidth: 0 } : own.call(this, node); };
      }
    }
    this.jsonButton.textContent = show ? "JSON ▾" : "JSON ▸";
  }

  // ------------------------------------------------------------------ state <-> widgets
  // The widgets hold the drive in the pixels of the picture it was drawn on (their "size"); the editor works on it
  // fitted to this picture, as the node fits it, and every edit writes it back in this picture's pixels.
  readState() {
    const shapeText = this.widget("shape")?.value ?? "", keysText_ = this.widget("keyframes")?.value ?? "";
    this.error = null;
    let keys = this.keys, shape = this.shape;
    try { const r = readKeys(JSON.parse(keysText_)); keys = r.keys; this.keysSize = r.size; }
    catch (e) { this.error = `keyframes: ${e.message}`; }
    try { shape = parseShape(shapeText); this.shapeSize = shape.size; }
    catch (e) { this.error = `shape: ${e.message}`; }
    if (!this.known) { // no picture yet: show the drive in the pixels it was drawn in
      const size = this.shapeSize || this.keysSize;
      if (size) this.resizeCanvas(Math.round(size[0]), Math.round(size[1]));
    }
    this.keys = keys ? fitKeys(keys, this.keysSize, this.W, this.H) : [{ frame: 0, x: 0, y: 0, scale: 1, rotation: 0, easing: "linear" }];
    this.shape = shape ? fitShape(shape, this.W, this.H) : { size: [this.W, this.H], shapes: [] };
    this.last = { shape: shapeText, keyframes: keysText_, frames: this.frames(), mask: this.maskConnected(), track: this.trackConnected() };
    this.selected = Math.max(0, Math.min(this.selected, this.keys.length - 1));
    this.updateDriver();
  }

  changedOutside() {
    return this.widget("shape")?.value !== this.last.shape || this.widget("keyframes")?.value !== this.last.keyframes
      || this.frames() !== this.last.frames || this.maskConnected() !== this.last.mask || this.trackConnected() !== this.last.track;
  }

  setWidget(name, text) {
    const w = this.widget(name);
    if (!w) return;
    w.value = text;
    w.callback?.(text, app.canvas, this.node);
    this.node.setDirtyCanvas?.(true, true);
  }

  drawnHere(size) { return !size || (size[0] === this.W && size[1] === this.H); }

  // the drawn shapes in this picture's pixels, as stored (fitted ones rounded to 0.01 px)
  shapesHere() { return this.drawnHere(this.shapeSize) ? this.shape.shapes : this.shape.shapes.map(roundShape); }

  // a widget still in the pixels of another picture: rewritten in this picture's, with the other edit
  storeBothHere() {
    if (this.error) return;
    if (!this.drawnHere(this.keysSize)) this.setWidget("keyframes", keysText(this.keys, [this.W, this.H]));
    if (!this.drawnHere(this.shapeSize)) this.setWidget("shape", JSON.stringify({ size: [this.W, this.H], shapes: this.shapesHere() }));
  }

  writeKeys(keys, { select = null } = {}) {
    keys = keys.map((k) => ({ ...k })).sort((a, b) => a.frame - b.frame);
    this.storeBothHere();
    this.setWidget("keyframes", keysText(keys, [this.W, this.H]));
    this.refresh();
    if (select !== null) { const i = this.keys.findIndex((k) => k.frame === select); if (i >= 0) this.selected = i; }
    this.render();
  }

  writeShape(shapes) {
    this.storeBothHere();
    this.setWidget("shape", JSON.stringify({ size: [this.W, this.H], shapes }));
    this.refresh();
  }

  copyKeys() { return this.keys.map((k) => ({ ...k })); }

  pushUndo() {
    this.undo.push({ shape: this.widget("shape")?.value, keyframes: this.widget("keyframes")?.value });
    if (this.undo.length > 200) this.undo.shift();
  }

  popUndo() {
    const s = this.undo.pop();
    if (!s) { this.say("nothing to undo"); return; }
    this.setWidget("shape", s.shape); this.setWidget("keyframes", s.keyframes); this.refresh();
  }

  // a refusal or a hint: shown until the next action
  say(text) { this.messageEl.textContent = text; this.messageEl.title = text; }

  resetPath() {
    this.pushUndo(); this.selected = 0; this.frame = 0;
    this.writeKeys([{ frame: 0, x: 0, y: 0, scale: 1, rotation: 0, easing: "linear" }]);
  }

  clearShape() { this.pushUndo(); this.writeShape([]); }

  removeKey(i) {
    if (!this.keys[i]) return;
    if (this.keys.length < 2) { this.say("the path keeps at least one keyframe (Reset path puts it back at frame 0)"); return; }
    this.pushUndo();
    const keys = this.copyKeys().filter((_, j) => j !== i);
    this.selected = Math.max(0, i - 1);
    this.writeKeys(keys);
  }

  setEasing(i, easing) {
    if (!this.keys[i]) return;
    this.pushUndo();
    const keys = this.copyKeys(); keys[i].easing = easing;
    this.writeKeys(keys);
  }

  // the driver's first-frame mask and pivot, in image pixels
  updateDriver() {
    const W = this.W, H = this.H;
    if (this.maskConnected()) {
      const v = this.runView;
      const fresh = v && v.from_mask && v.size && v.size[0] === W && v.size[1] === H;
      this.pivot = fresh ? v.pivot : [W / 2, H / 2];
      this.maskCanvas = fresh && this.runMaskImg ? this.runMaskImg : null;
      this.samples = fresh && this.runMask ? samplePixels(this.runMask, W, H) : [];
      this.area = fresh && this.runMask ? this.runMask.reduce((a, b) => a + b, 0) : 0;
      return;
    }
    const mask = rasterize(this.shape, W, H);
    this.pivot = pivotOf(mask, W, H);
    this.samples = samplePixels(mask, W, H);
    let area = 0;
    const c = document.createElement("canvas");
    c.width = W; c.height = H;
    const g = c.getContext("2d");
    const img = g.createImageData(W, H);
    for (let p = 0; p < W * H; p++) if (mask[p]) { area++; img.data[4 * p] = 80; img.data[4 * p + 1] = 200; img.data[4 * p + 2] = 255; img.data[4 * p + 3] = 255; }
    g.putImageData(img, 0, 0);
    this.maskCanvas = c;
    this.area = area;
  }

  // ------------------------------------------------------------------ the picture
  backgroundSource() {
    const i = this.node.inputs?.findIndex((x) => x.name === "image") ?? -1;
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
    if (b) return this.viewURL(b);
    return null;
  }

  viewURL(f) { return api.apiURL(`/view?filename=${encodeURIComponent(f.filename)}&type=${f.type}&subfolder=${encodeURIComponent(f.subfolder || "")}`); }

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

  resizeCanvas(W, H) { this.W = W; this.H = H; }

  // the canvas's drawing buffer follows its size on screen; true when it changed
  fitBuffer() {
    const r = this.canvas.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(r.width * dpr)), h = Math.max(1, Math.round(r.height * dpr));
    if (this.canvas.width === w && this.canvas.height === h) return false;
    this.canvas.width = w; this.canvas.height = h;
    return true;
  }

  // the picture's size is known (its file loaded, or the node ran): the drive is fitted to it
  setSize(W, H) {
    const changed = !this.known || W !== this.W || H !== this.H;
    this.known = true;
    this.resizeCanvas(W, H);
    if (changed) this.readState();
    this.render();
  }

  onExecuted(view) {
    this.runView = view;
    const lines = [...(view.warnings || []).map((w) => `⚠ ${w}`), ...(view.notes || [])];
    this.runEl.textContent = lines.length ? `Last run: ${lines.join(" · ")}` : "";
    this.runEl.title = this.runEl.textContent;
    if (view && view.size) this.setSize(view.size[0], view.size[1]);
    if (view && view.mask) {
      const img = new Image();
      img.onload = () => {
        this.runMaskImg = img;
        try { // the mask's pixels (alpha) for the out-of-picture estimate
          const c = document.createElement("canvas");
          c.width = img.naturalWidth; c.height = img.naturalHeight;
          const g = c.getContext("2d"); g.drawImage(img, 0, 0);
          const d = g.getImageData(0, 0, c.width, c.height).data;
          this.runMask = new Uint8Array(c.width * c.height).map((_, p) => (d[4 * p + 3] > 127 ? 1 : 0));
        } catch (e) { this.runMask = null; }
        this.updateDriver(); this.render();
      };
      img.src = this.viewURL(view.mask);
    }
    this.loadBackground();
    this.updateDriver(); this.render();
  }

  refresh() {
    if (this.changedOutside()) this.readState();
    this.loadBackground();
    this.render();
  }

  // ------------------------------------------------------------------ geometry
  // per frame [x, y, scale, rotation]; with a track connected, x and y of the last run's path
  params() {
    const F = this.frames();
    const p = interpolate(this.keys, F);
    const path = this.trackPath();
    if (path) path.forEach(([x, y], f) => { p[f][0] = x - this.pivot[0]; p[f][1] = y - this.pivot[1]; });
    return p;
  }

  trackPath() {
    const v = this.runView;
    if (!this.trackConnected() || !v || !v.path || v.path.length !== this.frames()) return null;
    return v.path;
  }

  centreAt(p) { return [this.pivot[0] + p[0], this.pivot[1] + p[1]]; }

  pxPerScreen() {
    const r = this.canvas.getBoundingClientRect();
    const s = Math.min(r.width / this.W, r.height / this.H) || 1;
    return 1 / s;
  }

  inside(p, margin = 0) { return p[0] >= margin && p[0] <= this.W - margin && p[1] >= margin && p[1] <= this.H - margin; }

  // a point kept on the picture, `margin` image pixels inside its edge
  clampIn(p, margin) {
    const m = Math.min(margin, this.W / 2, this.H / 2);
    return [Math.min(this.W - m, Math.max(m, p[0])), Math.min(this.H - m, Math.max(m, p[1]))];
  }

  // where a key is drawn and grabbed: its centre, or on the picture's edge when the centre is off the picture
  keyPos(k) { const c = this.centreAt([k.x, k.y]); return this.inside(c) ? c : this.clampIn(c, EDGE_PX * this.pxPerScreen()); }

  // the selected key's handles, kept inside the picture: flipped to the other side at an edge, pulled in if needed
  handles(k) {
    const u = this.pxPerScreen(), margin = EDGE_PX * u;
    const r = Math.max(6, Math.sqrt((this.area || 100) / Math.PI), 14 * u);
    const c = this.keyPos(k);
    const a = k.rotation * Math.PI / 180;
    const at = (dx, dy) => [c[0] + dx * Math.cos(a) - dy * Math.sin(a), c[1] + dx * Math.sin(a) + dy * Math.cos(a)];
    const pick = (offsets) => {
      for (const [dx, dy] of offsets) { const p = at(dx, dy); if (this.inside(p, margin)) return p; }
      // none fits: along the first direction, as far as the picture allows
      const [dx, dy] = offsets[0], len = Math.hypot(dx, dy);
      for (let f = 1; f > 0.05; f *= 0.8) { const p = at(dx * f, dy * f); if (this.inside(p, margin)) return p; }
      return this.clampIn(at(dx, dy), margin);
    };
    const d = r * k.scale;
    const s = Math.max(d, 12 * u);
    const rr = Math.max(1.5 * d, 18 * u);
    return { centre: c, scale: pick([[s, s], [-s, s], [s, -s], [-s, -s]]), rotate: pick([[0, -rr], [0, rr], [rr, 0], [-rr, 0]]) };
  }

  // ------------------------------------------------------------------ drawing
  render({ list = true } = {}) {
    const F = this.frames();
    if (this.frame > F - 1) this.frame = F - 1;
    this.scrubLabel.textContent = `frame ${this.frame} / ${F - 1}`;
    for (const [id, b] of Object.entries(this.toolButtons)) {
      b.style.outline = id === this.tool ? "2px solid #4af" : "";
      b.style.opacity = id !== "path" && this.maskConnected() ? ".45" : "";
    }
    if (this.maskConnected() && this.tool !== "path") this.tool = "path";
    const g = this.canvas.getContext("2d");
    const W = this.W, H = this.H, u = this.pxPerScreen();
    this.fitBuffer();
    g.setTransform(1, 0, 0, 1, 0, 0);
    g.clearRect(0, 0, this.canvas.width, this.canvas.height);
    { // image pixels -> buffer pixels: the picture centred, as toImage() maps the pointer back
      const r = this.canvas.getBoundingClientRect(), k = this.canvas.width / (r.width || 1), s = Math.min(r.width / W, r.height / H) || 1;
      g.setTransform(s * k, 0, 0, s * k, (r.width - W * s) / 2 * k, (r.height - H * s) / 2 * k);
    }
    if (this.bg) g.drawImage(this.bg, 0, 0, W, H);
    else { g.fillStyle = "#333"; g.fillRect(0, 0, W, H); }
    const params = this.params();
    this.flags = this.computeFlags(params);
    params.forEach((p, f) => { if (f !== this.frame) this.drawMask(g, p, 0.12); }); // ghosts
    this.drawMask(g, params[this.frame], 0.6);
    // the connected track, as the node followed it in the last run
    const track = this.trackConnected() && this.runView && this.runView.track;
    if (track) {
      g.save(); g.setLineDash([6 * u, 4 * u]); g.lineWidth = 2 * u; g.strokeStyle = "rgba(80,220,255,.9)"; g.beginPath();
      track.forEach(([x, y], i) => (i ? g.lineTo(x, y) : g.moveTo(x, y))); g.stroke(); g.restore();
    }
    // the path through every frame's centre
    g.lineWidth = 1.5 * u; g.strokeStyle = "rgba(255,255,255,.8)"; g.beginPath();
    params.forEach((p, f) => { const c = this.centreAt(p); f ? g.lineTo(c[0], c[1]) : g.moveTo(c[0], c[1]); });
    g.stroke();
    params.forEach((p, f) => {
      const c = this.centreAt(p);
      g.fillStyle = this.flags.leaving.includes(f) ? "#f44" : "#fff";
      g.beginPath(); g.arc(c[0], c[1], 2 * u, 0, 2 * Math.PI); g.fill();
    });
    // keyframes (x, y unused with a track: drawn faint), the selected one with its handles
    g.font = `${11 * u}px sans-serif`;
    const faint = !!this.trackPath() || (this.trackConnected() && !this.runView);
    this.keys.forEach((k, i) => {
      const c = this.keyPos(k), off = !this.inside(this.centreAt([k.x, k.y])), beyond = k.frame > F - 1;
      g.globalAlpha = faint ? 0.45 : 1;
      g.beginPath(); g.arc(c[0], c[1], 5 * u, 0, 2 * Math.PI);
      g.lineWidth = (off ? 2.5 : 1) * u;
      if (off) { g.strokeStyle = i === this.selected ? "#fc3" : "#f63"; g.stroke(); this.drawArrow(g, c, this.centreAt([k.x, k.y]), u); }
      else { g.fillStyle = i === this.selected ? "#fc3" : "#f63"; g.fill(); g.strokeStyle = beyond ? "#f22" : "#000"; g.stroke(); }
      const label = beyond ? `${k.frame} ▸ past the end` : String(k.frame), tw = g.measureText(label).width;
      const lx = c[0] + 7 * u + tw < W ? c[0] + 7 * u : Math.max(2 * u, c[0] - 7 * u - tw);
      g.fillStyle = beyond ? "#f66" : "#fff";
      g.fillText(label, lx, c[1] - 7 * u < 10 * u ? c[1] + 16 * u : c[1] - 7 * u);
      g.globalAlpha = 1;
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
    this.renderStrip();
    if (list) this.renderList();
    this.status.textContent = this.statusText();
    this.status.title = this.status.textContent;
  }

  drawArrow(g, from, to, u) { // a small arrow at `from` pointing towards the off-picture centre `to`
    const a = Math.atan2(to[1] - from[1], to[0] - from[0]), l = 9 * u;
    g.beginPath(); g.moveTo(from[0] + Math.cos(a) * l, from[1] + Math.sin(a) * l);
    g.lineTo(from[0] + Math.cos(a + 2.5) * 5 * u, from[1] + Math.sin(a + 2.5) * 5 * u);
    g.lineTo(from[0] + Math.cos(a - 2.5) * 5 * u, from[1] + Math.sin(a - 2.5) * 5 * u);
    g.closePath(); g.fill();
  }

  computeFlags(params) {
    const F = this.frames();
    const beyond = this.keys.filter((k) => k.frame > F - 1).map((k) => k.frame);
    const share = this.samples.length ? insideShare(this.samples, this.pivot, params, this.W, this.H) : [];
    const leaving = share[0] > 0 ? share.map((s, f) => (s < 0.5 ? f : -1)).filter((f) => f >= 0) : [];
    return { beyond, leaving, share };
  }

  statusText() {
    const W = this.W, H = this.H, F = this.frames();
    const parts = [];
    if (this.maskConnected()) parts.push(this.runView && this.runView.from_mask ? "the connected mask drives" : "a mask is connected: run once to see it");
    else parts.push(this.area ? `${this.area} px driver` : "draw the driver (Ellipse, Rectangle, Brush)");
    if (this.trackConnected()) parts.push(this.trackPath() ? "the connected track moves it (dashed: the track)" : "a track is connected: it replaces the keys' x, y; run once to see it");
    if (!this.bg) parts.push("connect a Load Image, or run once, to see the picture");
    parts.push(`${W}x${H}`, `${this.keys.length} keyframe(s)`);
    const drawnOn = [this.shapeSize, this.keysSize].find((s) => s && this.known && (s[0] !== W || s[1] !== H));
    if (drawnOn) parts.push(`drawn on ${drawnOn[0]}x${drawnOn[1]}, fitted to this picture (the next edit stores it in its pixels)`);
    if (this.flags.beyond.length) parts.push(`⚠ key${this.flags.beyond.length > 1 ? "s" : ""} at frame ${this.flags.beyond.join(", ")} past the last frame (${F - 1})`);
    if (this.flags.leaving.length) parts.push(`⚠ leaves the picture at frame ${frameList(this.flags.leaving)}`);
    if (this.error) parts.unshift(`${this.error} (fix the text, or Undo)`);
    return parts.join(" · ");
  }

  drawMask(g, p, alpha) {
    if (!this.maskCanvas || !p) return;
    const [cx, cy] = this.pivot;
    g.save();
    g.beginPath(); g.rect(0, 0, this.W, this.H); g.clip(); // the node's masks end at the picture's edge
    g.imageSmoothingEnabled = false; // its pixels, as the node makes them
    g.globalAlpha = alpha;
    g.translate(cx + p[0], cy + p[1]);
    g.rotate(p[3] * Math.PI / 180);
    g.scale(p[2], p[2]);
    g.translate(-cx, -cy);
    g.drawImage(this.maskCanvas, 0, 0, this.W, this.H);
    g.restore();
  }

  drawPreview(g, p, u) {
    g.save(); g.strokeStyle = "#4af"; g.lineWidth = 1.5 * u;
    if (p.type === "ellipse") { g.beginPath(); g.ellipse(p.cx, p.cy, p.rx, p.ry, 0, 0, 2 * Math.PI); g.stroke(); }
    else if (p.type === "rect") g.strokeRect(p.x, p.y, p.w, p.h);
    else { g.lineWidth = 2 * p.radius; g.lineCap = g.lineJoin = "round"; g.globalAlpha = 0.5; g.beginPath();
      p.points.forEach(([x, y], i) => (i ? g.lineTo(x, y) : g.moveTo(x, y))); if (p.points.length === 1) g.lineTo(p.points[0][0] + 0.01, p.points[0][1]); g.stroke(); }
    g.restore();
  }

  // ------------------------------------------------------------------ the timeline strip
  stripX(f) {
    const w = this.strip.getBoundingClientRect().width || 300, F = this.frames();
    return F > 1 ? STRIP_PAD + f * (w - 2 * STRIP_PAD) / (F - 1) : w / 2;
  }

  stripFrame(x) {
    const w = this.strip.getBoundingClientRect().width || 300, F = this.frames();
    return F > 1 ? Math.round((x - STRIP_PAD) * (F - 1) / (w - 2 * STRIP_PAD)) : 0;
  }

  // where a key's mark is: on its frame, or just past the last frame when it lies beyond it
  markX(k) { const F = this.frames(); return k.frame > F - 1 ? this.stripX(F - 1) + 8 : this.stripX(k.frame); }

  renderStrip() {
    const r = this.strip.getBoundingClientRect();
    if (!r.width) return;
    const dpr = window.devicePixelRatio || 1, w = r.width, h = r.height || 40;
    if (this.strip.width !== Math.round(w * dpr) || this.strip.height !== Math.round(h * dpr)) { this.strip.width = Math.round(w * dpr); this.strip.height = Math.round(h * dpr); }
    const g = this.strip.getContext("2d");
    g.setTransform(dpr, 0, 0, dpr, 0, 0);
    g.clearRect(0, 0, w, h);
    const F = this.frames(), X = (f) => this.stripX(f);
    // frame ticks, the frames where the driver leaves the picture in red
    g.font = "9px sans-serif"; g.textAlign = "center";
    const every = Math.max(1, Math.ceil(F / Math.max(1, (w - 2 * STRIP_PAD) / 22)));
    for (let f = 0; f < F; f++) {
      g.fillStyle = this.flags.leaving.includes(f) ? "#f44" : "#666";
      g.fillRect(X(f) - 0.5, 27, 1, f % every ? 3 : 5);
      if (f % every === 0 || f === F - 1) { g.fillStyle = "#999"; g.fillText(String(f), X(f), 38); }
    }
    // each segment's easing, drawn as its curve from one key to the next
    for (let i = 0; i + 1 < this.keys.length; i++) {
      const a = this.keys[i], b = this.keys[i + 1];
      if (a.frame > F - 1) break;
      const x0 = X(a.frame), x1 = b.frame > F - 1 ? X(F - 1) : X(b.frame);
      const col = EASE_COLOURS[a.easing] || "#9ab";
      g.fillStyle = i === this.selected ? "rgba(255,200,50,.18)" : "rgba(255,255,255,.05)";
      g.fillRect(x0, 2, x1 - x0, 13);
      g.strokeStyle = col; g.lineWidth = 1.5; g.beginPath();
      const span = b.frame - a.frame;
      for (let s = 0; s <= 24; s++) {
        const t = s / 24, fx = a.frame + t * span;
        if (fx > F - 1) break;
        const e = a.easing === "hold" ? (t < 1 ? 0 : 1) : this.easeAt(t, a.easing);
        const x = X(fx), y = 14 - 11 * e;
        s ? g.lineTo(x, y) : g.moveTo(x, y);
      }
      g.stroke();
      const label = EASE_LABELS[a.easing];
      if (x1 - x0 > g.measureText(label).width + 8) { g.fillStyle = col; g.font = "9px sans-serif"; g.fillText(label, (x0 + x1) / 2, 24); }
    }
    // the scrubber
    const sx = X(this.frame);
    g.fillStyle = "#4af"; g.fillRect(sx - 1, 0, 2, h);
    g.beginPath(); g.moveTo(sx - 5, 0); g.lineTo(sx + 5, 0); g.lineTo(sx, 6); g.closePath(); g.fill();
    // one mark per key; keys past the last frame in red beyond its end
    this.keys.forEach((k, i) => {
      const x = this.markX(k), y = 20, beyond = k.frame > F - 1;
      g.fillStyle = beyond ? "#f33" : i === this.selected ? "#fc3" : "#f63";
      g.beginPath(); g.moveTo(x, y - 6); g.lineTo(x + 5, y); g.lineTo(x, y + 6); g.lineTo(x - 5, y); g.closePath(); g.fill();
      g.strokeStyle = "#000"; g.lineWidth = 1; g.stroke();
    });
  }

  easeAt(t, easing) { // drive_model's ease, for the strip's curves
    if (easing === "ease_in") return t ** 3;
    if (easing === "ease_out") return 1 - (1 - t) ** 3;
    if (easing === "ease_in_out") return t < 0.5 ? 4 * t ** 3 : 1 - (-2 * t + 2) ** 3 / 2;
    return t;
  }

  onStrip(ev) {
    const r = this.strip.getBoundingClientRect(), x = ev.clientX - r.left, y = ev.clientY - r.top;
    const F = this.frames();
    if (ev.type === "pointerdown") {
      ev.preventDefault(); ev.stopPropagation();
      this.focusInput.focus({ preventScroll: true });
      this.strip.setPointerCapture?.(ev.pointerId);
      let hit = -1, best = HIT_PX;
      this.keys.forEach((k, i) => { const d = Math.abs(this.markX(k) - x); if (d <= best && Math.abs(y - 20) <= 12) { best = d; hit = i; } });
      if (hit >= 0) {
        this.selected = hit; this.pushUndo();
        this.stripDrag = { kind: "key", index: hit, from: this.keys[hit].frame, moved: false };
        if (this.keys[hit].frame <= F - 1) this.frame = this.keys[hit].frame;
      } else {
        if (y < 16) { // on a segment: select its first key (the segment's easing is the key's)
          const i = this.keys.findIndex((k, j) => j + 1 < this.keys.length && this.stripX(k.frame) <= x && x <= this.stripX(Math.min(this.keys[j + 1].frame, F - 1)));
          if (i >= 0) this.selected = i;
        }
        this.stripDrag = { kind: "scrub" };
        this.frame = Math.max(0, Math.min(F - 1, this.stripFrame(x)));
      }
      this.render();
      return;
    }
    if (!this.stripDrag) return;
    ev.preventDefault(); ev.stopPropagation();
    const d = this.stripDrag;
    if (d.kind === "scrub") {
      this.frame = Math.max(0, Math.min(F - 1, this.stripFrame(x)));
      if (ev.type !== "pointermove") this.stripDrag = null;
      this.render({ list: false });
      return;
    }
    // a key dragged in time: between its neighbours, within the video
    const lo = d.index > 0 ? this.keys[d.index - 1].frame + 1 : 0;
    const hi = Math.min(F - 1, d.index + 1 < this.keys.length ? this.keys[d.index + 1].frame - 1 : F - 1);
    const want = this.stripFrame(x);
    if (ev.type === "pointermove") {
      if (lo > hi) { this.say(`no free frame for this key between frames ${lo - 1} and ${hi + 1}`); return; }
      const f = Math.max(lo, Math.min(hi, want));
      if (f !== this.keys[d.index].frame) {
        const keys = this.copyKeys(); keys[d.index].frame = f; d.moved = true;
        this.storeBothHere();
        this.setWidget("keyframes", keysText(keys, [this.W, this.H])); this.refresh();
        this.selected = d.index; this.frame = f; this.render({ list: false });
      }
      return;
    }
    this.stripDrag = null;
    if (!d.moved) this.undo.pop();
    else if (want < lo || want > hi) this.say(`a key stays between its neighbours (frames ${lo} to ${hi} here)`);
    this.render();
  }

  // ------------------------------------------------------------------ the key list
  renderList() {
    const F = this.frames();
    const rows = this.keys.map((k, i) => {
      const beyond = k.frame > F - 1;
      const num = (cls, value, step, title, set) => {
        const e = el("input", { type: "number", value: String(round(value, 3)), step, title, className: cls, style: "width:50px" });
        e.addEventListener("change", () => set(Number(e.value), e));
        return e;
      };
      const frame = num("interdyn-key-frame", k.frame, 1, "The output frame of this keyframe", (v, e) => {
        if (!Number.isInteger(v) || v < 0 || v > F - 1 || this.keys.some((o, j) => j !== i && o.frame === v)) {
          this.say(`frame must be a free whole number in 0..${F - 1}`); e.value = String(k.frame); return;
        }
        this.pushUndo(); const keys = this.copyKeys(); keys[i].frame = v; this.frame = v;
        this.writeKeys(keys, { select: v });
      });
      const scale = num("interdyn-key-scale", k.scale, 0.05, "Size factor (1 = as drawn; 0.001 to 1000)", (v, e) => {
        if (!(v >= 0.001 && v <= 1000)) { this.say("scale must be between 0.001 and 1000"); e.value = String(k.scale); return; }
        this.pushUndo(); const keys = this.copyKeys(); keys[i].scale = v; this.writeKeys(keys);
      });
      const rot = num("interdyn-key-rotation", k.rotation, 5, "Rotation in degrees, clockwise", (v, e) => {
        if (!Number.isFinite(v) || Math.abs(v) > 1e6) { this.say("rotation must be a number of degrees"); e.value = String(k.rotation); return; }
        this.pushUndo(); const keys = this.copyKeys(); keys[i].rotation = v; this.writeKeys(keys);
      });
      const easing = el("select", { className: "interdyn-key-easing", title: "How it travels to the next keyframe" },
        EASINGS.map((e) => el("option", { value: e, textContent: e, selected: e === k.easing })));
      easing.addEventListener("change", () => this.setEasing(i, easing.value));
      const del = el("button", { textContent: "×", title: "Remove this keyframe (also: right-click it, or Delete)", className: "interdyn-key-delete", disabled: this.keys.length < 2 });
      del.addEventListener("click", () => this.removeKey(i));
      const where = el("span", { textContent: `x ${round(k.x, 1)} y ${round(k.y, 1)} ×`, style: "white-space:nowrap" });
      const flag = beyond ? [el("span", { className: "interdyn-key-beyond", textContent: `past the last frame (${F - 1})`, style: "color:#f66;white-space:nowrap" })] : [];
      const row = el("div", { className: "interdyn-key" + (beyond ? " interdyn-key-beyond-row" : ""),
        style: `display:flex;gap:3px;align-items:center;flex:none;${beyond ? "outline:1px solid #f44;" : ""}${i === this.selected ? "background:rgba(255,200,50,.15)" : ""}` },
      [el("span", { textContent: "frame" }), frame, where, scale, el("span", { textContent: "°" }), rot, easing, del, ...flag]);
      // select without rebuilding the rows: the field under the pointer must stay to take the focus
      row.addEventListener("pointerdown", () => {
        if (this.selected === i) return;
        this.selected = i; if (!beyond) this.frame = k.frame;
        for (const [j, r] of Array.from(this.list.children).entries()) r.style.background = j === i ? "rgba(255,200,50,.15)" : "";
        this.render({ list: false });
      });
      return row;
    });
    const focused = this.list.contains(document.activeElement);
    if (!focused) this.list.replaceChildren(...rows);
  }

  // ------------------------------------------------------------------ the menu (right-click off a key)
  openMenu(ev) {
    const k = this.keys[this.selected], next = this.keys[this.selected + 1];
    const item = (label, action, { checked = false, disabled = false, cls = "" } = {}) => {
      const e = el("div", { className: `interdyn-menu-item ${cls}`, textContent: `${checked ? "✓ " : ""}${label}`,
        style: `padding:3px 12px;cursor:${disabled ? "default" : "pointer"};${disabled ? "opacity:.45" : ""}` });
      e.addEventListener("pointerenter", () => { if (!disabled) e.style.background = "#3a5a7a"; });
      e.addEventListener("pointerleave", () => { e.style.background = ""; });
      e.addEventListener("pointerdown", (x) => { x.stopPropagation(); x.preventDefault(); if (disabled) return; this.closeMenu(); action(); });
      return e;
    };
    const items = [item("Reset path", () => this.resetPath(), { cls: "interdyn-menu-reset-path" }),
      item("Clear shape", () => this.clearShape(), { cls: "interdyn-menu-clear-shape", disabled: this.maskConnected() }),
      el("div", { style: "border-top:1px solid #555;margin:3px 0" }),
      el("div", { textContent: next ? `Easing, frame ${k.frame} → ${next.frame}:` : "Easing: select a key that has a next one",
        style: "padding:2px 12px;opacity:.7;font-size:11px" })];
    for (const e of EASINGS) items.push(item(e, () => this.setEasing(this.selected, e), { checked: k && k.easing === e, disabled: !next, cls: `interdyn-menu-easing-${e}` }));
    items.push(el("div", { style: "border-top:1px solid #555;margin:3px 0" }),
      item(this.jsonShown() ? "Hide the JSON widgets" : "Show the JSON widgets", () => this.showJson(!this.jsonShown()), { cls: "interdyn-menu-json" }));
    this.menu.replaceChildren(...items);
    const r = this.root.getBoundingClientRect(), scale = r.width / (this.root.offsetWidth || r.width) || 1;
    this.menu.style.display = "block";
    const mw = this.menu.offsetWidth, mh = this.menu.offsetHeight;
    const left = Math.min((ev.clientX - r.left) / scale, this.root.offsetWidth - mw - 2);
    const top = Math.min((ev.clientY - r.top) / scale, this.root.offsetHeight - mh - 2);
    this.menu.style.left = `${Math.max(0, left)}px`; this.menu.style.top = `${Math.max(0, top)}px`;
  }

  closeMenu() { this.menu.style.display = "none"; }

  // ------------------------------------------------------------------ pointer on the picture
  toImage(ev) {
    const r = this.canvas.getBoundingClientRect();
    const s = Math.min(r.width / this.W, r.height / this.H);
    const ox = (r.width - this.W * s) / 2, oy = (r.height - this.H * s) / 2;
    return [(ev.clientX - r.left - ox) / s, (ev.clientY - r.top - oy) / s];
  }

  hitKey(p, tol) {
    let hit = -1, best = tol;
    this.keys.forEach((k, i) => { const c = this.keyPos(k), d = Math.hypot(p[0] - c[0], p[1] - c[1]); if (d <= best) { best = d; hit = i; } });
    return hit;
  }

  onPointer(ev) {
    const p = this.toImage(ev), tol = HIT_PX * this.pxPerScreen();
    if (ev.type === "pointerdown") {
      this.focusInput.focus({ preventScroll: true });
      ev.preventDefault(); ev.stopPropagation();
      if (ev.button === 2) { // right-click: remove the key under the pointer, else the menu
        const hit = this.hitKey(p, tol);
        if (hit >= 0) this.removeKey(hit); else this.openMenu(ev);
        this.render();
        return;
      }
      if (ev.button !== 0) return;
      this.canvas.setPointerCapture?.(ev.pointerId);
      if (this.tool === "path") this.startPath(p, tol, ev);
      else if (this.maskConnected()) this.say("a mask is connected: it replaces the drawn shape (disconnect it to draw one)");
      else {
        const preview = this.tool === "brush" ? { type: "brush", radius: Math.max(0.5, Number(this.brush.value) || 6), points: [p] }
          : { type: this.tool, x: p[0], y: p[1], w: 0, h: 0, cx: p[0], cy: p[1], rx: 0, ry: 0 };
        this.drag = { kind: "shape", start: p, preview, shift: ev.shiftKey };
      }
      this.render();
      return;
    }
    if (!this.drag) return;
    ev.preventDefault(); ev.stopPropagation();
    if (ev.type === "pointermove") { this.moveDrag(p, ev.shiftKey); this.render({ list: false }); return; }
    this.endDrag(p, ev.type === "pointercancel");
  }

  // the key a new click makes: its frame and its scale and rotation there
  newKey(frame, p) {
    const F = this.frames();
    const at = interpolate(this.keys, Math.max(F, frame + 1))[frame];
    return { frame, x: p[0] - this.pivot[0], y: p[1] - this.pivot[1], scale: at[2], rotation: at[3], easing: "linear" };
  }

  startPath(p, tol, ev) {
    const F = this.frames();
    const append = ev.shiftKey, insert = ev.ctrlKey || ev.metaKey;
    if (!append && !insert) {
      const k = this.keys[this.selected];
      if (k) {
        const h = this.handles(k);
        for (const kind of ["scale", "rotate"]) {
          if (Math.hypot(p[0] - h[kind][0], p[1] - h[kind][1]) <= tol) {
            this.pushUndo(); this.drag = { kind, index: this.selected, h, key: { ...k } }; return;
          }
        }
      }
      const hit = this.hitKey(p, tol);
      if (hit >= 0) {
        this.selected = hit; if (this.keys[hit].frame <= F - 1) this.frame = this.keys[hit].frame;
        this.pushUndo(); this.drag = { kind: "move", index: hit, moved: false };
        return;
      }
    }
    if (!this.inside(p)) {
      this.say(`click on the picture: (${round(p[0], 1)}, ${round(p[1], 1)}) is outside the ${this.W}x${this.H} image`);
      return;
    }
    const last = this.keys[this.keys.length - 1].frame, step = Math.max(1, Math.round((F - 1) / 3));
    let frame;
    if (insert) { // between the two consecutive keys whose segment on the picture is nearest to the click
      if (this.keys.length < 2) { this.say("Ctrl-click inserts between two keys; there is one: click (or Shift-click) to add"); return; }
      let best = Infinity, at = 0;
      for (let i = 0; i + 1 < this.keys.length; i++) {
        const a = this.centreAt([this.keys[i].x, this.keys[i].y]), b = this.centreAt([this.keys[i + 1].x, this.keys[i + 1].y]);
        const dx = b[0] - a[0], dy = b[1] - a[1], l2 = dx * dx + dy * dy;
        const t = l2 ? Math.max(0, Math.min(1, ((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / l2)) : 0;
        const d = Math.hypot(p[0] - a[0] - t * dx, p[1] - a[1] - t * dy);
        if (d < best) { best = d; at = i; }
      }
      const a = this.keys[at].frame, b = this.keys[at + 1].frame;
      if (b - a < 2) { this.say(`no free frame between the keys at frames ${a} and ${b}: drag one of them on the timeline first`); return; }
      frame = Math.round((a + b) / 2);
    } else if (append || this.keys.some((o) => o.frame === this.frame)) {
      frame = Math.min(F - 1, last + step);
      if (frame <= last) { this.say(`the last frame (${F - 1}) already has a keyframe: Ctrl-click inserts between two keys, or raise frames`); return; }
    } else frame = this.frame;
    this.pushUndo();
    const keys = this.copyKeys();
    keys.push(this.newKey(frame, p));
    this.frame = frame;
    this.writeKeys(keys, { select: frame });
  }

  moveDrag(p, shift) {
    const d = this.drag;
    if (d.kind === "move" || d.kind === "scale" || d.kind === "rotate") {
      const keys = this.copyKeys(), k = keys[d.index], c = d.h ? d.h.centre : null;
      if (d.kind === "move") { k.x = p[0] - this.pivot[0]; k.y = p[1] - this.pivot[1]; d.moved = true; }
      else if (d.kind === "scale") { // the distance to the centre, relative to where the handle was grabbed
        const ratio = Math.hypot(p[0] - c[0], p[1] - c[1]) / Math.max(1e-6, Math.hypot(d.h.scale[0] - c[0], d.h.scale[1] - c[1]));
        k.scale = Math.max(0.01, Math.min(100, d.key.scale * ratio));
      } else { // the angle turned about the centre since the handle was grabbed
        const turn = Math.atan2(p[1] - c[1], p[0] - c[0]) - Math.atan2(d.h.rotate[1] - c[1], d.h.rotate[0] - c[0]);
        let deg = d.key.rotation + turn * 180 / Math.PI;
        deg = ((deg + 180) % 360 + 360) % 360 - 180;
        k.rotation = round(deg, 1);
      }
      this.storeBothHere();
      this.setWidget("keyframes", keysText(keys, [this.W, this.H])); this.refresh();
      return;
    }
    const s = d.preview;
    if (s.type === "brush") { const q = s.points[s.points.length - 1]; if (Math.hypot(p[0] - q[0], p[1] - q[1]) >= 0.1) s.points.push(p); return; }
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
    this.writeShape([...this.shapesHere(), shape]);
  }
}

// ---------------------------------------------------------------------------- registration
const EDITORS = new Set(); // the live editors, for the run's error events

app.registerExtension({
  name: "InterDyn.DriveEditor",
  setup() {
    // a failed run: its message on the node itself, not only in the frontend's toast or error panel
    api.addEventListener("execution_error", (ev) => {
      const d = ev.detail || {};
      for (const editor of EDITORS) {
        if (String(editor.node.id) !== String(d.node_id)) continue;
        const text = `Last run failed: ${String(d.exception_message || "").trim()}`;
        editor.runEl.textContent = text; editor.runEl.title = text;
      }
    });
  },
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name !== NODE) return;
    const created = nodeType.prototype.onNodeCreated;
    nodeType.prototype.onNodeCreated = function () {
      const r = created?.apply(this, arguments);
      const editor = new DriveEditor(this);
      this.interdynDrive = editor;
      EDITORS.add(editor);
      const widget = this.addDOMWidget("drive_editor", "interdyn_drive_editor", editor.root, {
        serialize: false, hideOnZoom: false,
        getMinHeight: () => 400,
        getValue: () => undefined, setValue: () => {},
      });
      widget.serialize = false; // not in widgets_values: the other widgets keep their saved positions
      editor.widget_ = widget;
      for (const name of ["shape", "keyframes"]) {
        const input = this.widgets?.find((x) => x.name === name)?.element;
        if (input && input.addEventListener) input.addEventListener("input", () => editor.refresh());
      }
      editor.applyJson();
      editor.readState(); editor.render();
      editor.timer = setInterval(() => {
        if (editor.changedOutside()) editor.refresh();
        else if (editor.backgroundSource() !== editor.bgKey) editor.loadBackground();
        else if (!editor.drag && editor.fitBuffer()) editor.render({ list: false }); // zoomed or resized
      }, 400);
      this.setSize([Math.max(this.size[0], DEFAULT_SIZE[0]), Math.max(this.size[1], DEFAULT_SIZE[1])]);
      return r;
    };
    const removed = nodeType.prototype.onRemoved;
    nodeType.prototype.onRemoved = function () {
      if (this.interdynDrive) { clearInterval(this.interdynDrive.timer); EDITORS.delete(this.interdynDrive); }
      return removed?.apply(this, arguments);
    };
    const configured = nodeType.prototype.onConfigure;
    nodeType.prototype.onConfigure = function () {
      const r = configured?.apply(this, arguments);
      if (this.interdynDrive) { this.interdynDrive.undo = []; this.interdynDrive.applyJson(); this.interdynDrive.refresh(); }
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
