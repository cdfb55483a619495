// Drives ComfyUI's own web page in headless Chromium (puppeteer-core), as a user would.
// Used by tests/test_comfyui_browser.py; the Python test makes the assertions.
//
//   node tests/comfyui_browser.js config.json > report.json
//
// config: {url, chromium, viewport: {width, height}, screenshots: folder,
//          workflows: [{name, path}], run: name of the workflow to run with the Run button or null,
//          run_timeout_s, drive: {workflow, prefix, square_image, track} or null}
// report: {frontend, viewport, workflows: {name: {...}}, run: {...}, drive: {...}, console_errors: [...],
//          console: [{type, text, urls}] (warnings and errors, with their stacks' files), deprecations: [{message, stack}]}
"use strict";
const fs = require("fs");
const path = require("path");
const puppeteer = require("puppeteer-core");

const CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run"];

const phase = { name: "load" }; // which part of the script a console message came in

function sleep(ms) { return new Promise((r) => setTimeout(r, ms)); }

async function waitFor(page, fn, timeoutMs, what, ...args) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await page.evaluate(fn, ...args).catch(() => null);
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    await sleep(250);
  }
}

// A queued prompt's end: its /history entry (success or error), or the dialog of a prompt the page refused.
function waitForRun(page, known, timeoutMs, what) {
  return waitFor(page, async (before) => {
    const dialog = Array.from(document.querySelectorAll(".p-dialog")).map((d) => d.innerText).join("\n");
    if (/failed validation|Prompt execution failed|Error/i.test(dialog)) return { dialog: dialog.slice(0, 2000) };
    const history = await (await fetch("/history")).json();
    for (const [id, e] of Object.entries(history)) {
      if (before.includes(id)) continue;
      const status = e.status && e.status.status_str;
      if (status === "success" || status === "error") return { id, status, messages: e.status.messages, outputs: e.outputs };
    }
    return null;
  }, timeoutMs, what, known);
}

// Everything the test needs to know about the loaded graph, measured in the page.
function inspectGraph() {
  const app = window.app;
  const canvas = app.canvas;
  const ds = canvas.ds;
  const el = canvas.canvas;
  const rect = el.getBoundingClientRect();
  // what covers the canvas: the frontend's menus and side bars sit on top of it
  const covers = [];
  for (const sel of [".comfyui-menu", ".side-tool-bar-container", ".comfyui-body-top", ".comfyui-body-left",
    ".actionbar", ".graph-canvas-menu", ".p-toolbar", ".workflow-tabs-container", "nav", ".splitter-overlay-root > div",
    // floating over the canvas: the minimap and the zoom controls
    ".minimap-canvas", "[class*='minimap-main']", "[class*='zoom-controls']", ".graph-canvas-menu"]) {
    for (const e of document.querySelectorAll(sel)) {
      const r = e.getBoundingClientRect();
      const style = getComputedStyle(e);
      if (r.width > 0 && r.height > 0 && style.visibility !== "hidden" && style.display !== "none") {
        covers.push({ selector: sel, x: r.x, y: r.y, w: r.width, h: r.height });
      }
    }
  }
  const nodes = (app.graph._nodes || app.graph.nodes).map((node) => {
    const b = node.getBounding ? Array.from(node.getBounding()) : [node.pos[0], node.pos[1] - 30, node.size[0], node.size[1] + 30];
    const screen = [(b[0] + ds.offset[0]) * ds.scale + rect.x, (b[1] + ds.offset[1]) * ds.scale + rect.y,
      b[2] * ds.scale, b[3] * ds.scale];
    const registered = !!(window.LiteGraph && window.LiteGraph.registered_node_types[node.type]);
    const widgets = (node.widgets || []).map((w) => ({
      name: w.name, type: w.type, value: typeof w.value === "object" && w.value !== null ? String(w.value) : w.value,
      min: w.options ? w.options.min : undefined, max: w.options ? w.options.max : undefined,
      values: w.options && Array.isArray(w.options.values) ? w.options.values : undefined,
    }));
    const min = node.computeSize ? Array.from(node.computeSize()) : null;
    return { id: node.id, type: node.type, title: node.title, bounding: b, screen, registered, size: Array.from(node.size), min_size: min,
      has_errors: !!node.has_errors, widgets };
  });
  return {
    scale: ds.scale, offset: Array.from(ds.offset), canvas: { x: rect.x, y: rect.y, w: rect.width, h: rect.height },
    covers, nodes,
    missing_dialog: Array.from(document.querySelectorAll(".p-dialog")).map((d) => d.innerText.slice(0, 300))
      .filter((t) => /missing/i.test(t)),
  };
}

// ---------------------------------------------------------------------------- the Drive Editor, by hand
function driveInfo(id) {
  const nodes = window.app.graph._nodes || window.app.graph.nodes;
  const node = id == null ? nodes.find((n) => n.type === "InterDynDriveEditor") : nodes.find((n) => n.id === id);
  if (!node || !node.interdynDrive) return null;
  const e = node.interdynDrive;
  const rect = (x) => { const r = x.getBoundingClientRect(); return { x: r.x, y: r.y, w: r.width, h: r.height }; };
  const q = (sel) => e.root.querySelector(sel);
  const widget = (name) => node.widgets.find((x) => x.name === name);
  const w = (name) => widget(name)?.value;
  const F = e.frames();
  const sel = e.keys[e.selected];
  const h = sel ? e.handles(sel) : null;
  const v = e.runView;
  const visible = (x) => !!x && x.getClientRects().length > 0 && getComputedStyle(x).visibility !== "hidden";
  return { id: node.id, W: e.W, H: e.H, known: e.known, bg: !!e.bg, canvas: rect(e.canvas), strip: rect(e.strip), pivot: e.pivot,
    keys: e.keys, shape: e.shape, selected: e.selected, frame: e.frame, tool: e.tool, area: e.area,
    status: e.status.textContent, message: e.messageEl.textContent, run_text: e.runEl.textContent, error: e.error,
    node_size: Array.from(node.size),
    widgets: { shape: w("shape"), keyframes: w("keyframes"), frames: w("frames"), snap_to_track_start: w("snap_to_track_start") },
    json: { hidden: ["shape", "keyframes"].map((n) => !!widget(n)?.hidden), textareas_visible: ["shape", "keyframes"].map((n) => visible(widget(n)?.element)) },
    buttons: Object.fromEntries(["tool-path", "tool-ellipse", "tool-rect", "tool-brush", "undo", "reset-path", "clear-shape", "json-toggle"]
      .map((c) => [c, q(`.interdyn-${c}`) ? rect(q(`.interdyn-${c}`)) : null])),
    frame_inputs: Array.from(e.root.querySelectorAll(".interdyn-key-frame")).map(rect),
    list_rows: Array.from(e.root.querySelectorAll(".interdyn-key")).map((r) => ({ ...rect(r), beyond: r.classList.contains("interdyn-key-beyond-row") })),
    list_box: rect(e.list), message_box: rect(e.messageEl), status_box: rect(e.status),
    key_pos: e.keys.map((k) => e.keyPos(k)), mark_x: e.keys.map((k) => e.markX(k)),
    strip_x: Array.from({ length: F }, (_, f) => e.stripX(f)),
    handles: h && { centre: h.centre, scale: h.scale, rotate: h.rotate },
    flags: e.flags, menu: { visible: e.menu.style.display !== "none", items: Array.from(e.menu.querySelectorAll(".interdyn-menu-item")).map((x) => ({ text: x.textContent, cls: x.className, ...rect(x) })) },
    run_view: v && { size: v.size, frames: v.frames, warnings: v.warnings, notes: v.notes, track: v.track, path: v.path },
    track_path: !!e.trackPath(),
    serialized_widgets: node.serialize().widgets_values };
}

function toScreen(info, x, y) { // image pixels -> page pixels (the canvas keeps the picture's aspect: object-fit contain)
  const c = info.canvas, s = Math.min(c.w / info.W, c.h / info.H);
  return [c.x + (c.w - info.W * s) / 2 + x * s, c.y + (c.h - info.H * s) / 2 + y * s];
}

function pictureRect(info) { // the picture inside the canvas element, page pixels
  const c = info.canvas, s = Math.min(c.w / info.W, c.h / info.H);
  return { x: c.x + (c.w - info.W * s) / 2, y: c.y + (c.h - info.H * s) / 2, w: info.W * s, h: info.H * s };
}

const stripPoint = (info, x) => [info.strip.x + x, info.strip.y + 20]; // a point on the timeline's key row
const info = (page) => page.evaluate(() => window.__driveInfo());

async function clickCentre(page, r) { await page.mouse.click(r.x + r.w / 2, r.y + r.h / 2); await sleep(150); }

async function clickWith(page, [x, y], { key = null, button = "left" } = {}) {
  if (key) await page.keyboard.down(key);
  await page.mouse.click(x, y, { button });
  if (key) await page.keyboard.up(key);
  await sleep(250);
}

async function drag(page, from, to, steps = 8) {
  await page.mouse.move(from[0], from[1]);
  await page.mouse.down();
  for (let i = 1; i <= steps; i++) await page.mouse.move(from[0] + (to[0] - from[0]) * i / steps, from[1] + (to[1] - from[1]) * i / steps);
  await page.mouse.up();
  await sleep(250);
}

async function shot(page, config, out, name) { out.screenshots[name] = path.join(config.screenshots, `${name}.png`); await page.screenshot({ path: out.screenshots[name] }); }

async function setWidget(page, name, value) { // as the frontend does when a widget is edited
  await page.evaluate((name, value) => {
    const node = (window.app.graph._nodes || window.app.graph.nodes).find((n) => n.type === "InterDynDriveEditor");
    const w = node.widgets.find((x) => x.name === name);
    w.value = value; w.callback?.(value, window.app.canvas, node);
    window.app.canvas.setDirty(true, true);
  }, name, value);
  await sleep(900); // the editor follows widget edits on its 0.4 s timer
}

// Run the graph as it is; the run's /history entry, what the page shows of it, and the editor afterwards
async function runDrive(page, prefix, timeoutMs = 120000) {
  const before = await page.evaluate(async () => Object.keys(await (await fetch("/history")).json()));
  const queued = await page.evaluate(async (prefix) => {
    const save = (window.app.graph._nodes || window.app.graph.nodes).find((n) => n.type === "SaveImage");
    save.widgets.find((w) => w.name === "filename_prefix").value = prefix;
    try { await window.app.queuePrompt(0, 1); return { ok: true }; } catch (e) { return { ok: false, error: String(e) }; }
  }, prefix);
  const entry = await waitForRun(page, before, timeoutMs, `the drive run ${prefix}`);
  if (entry.dialog) { // the page also shows an execution error as a dialog: wait for the history entry too
    const more = await waitForHistory(page, before, 30000).catch(() => null);
    if (more) Object.assign(entry, more);
  }
  await sleep(1200);
  return { queued, ...entry, after: await info(page) };
}

function waitForHistory(page, known, timeoutMs) {
  return waitFor(page, async (before) => {
    const history = await (await fetch("/history")).json();
    for (const [id, e] of Object.entries(history)) {
      if (before.includes(id)) continue;
      const status = e.status && e.status.status_str;
      if (status === "success" || status === "error") return { id, status, messages: e.status.messages, outputs: e.outputs };
    }
    return null;
  }, timeoutMs, "the history entry", known);
}

// what the page shows, outside the Drive Editor's own lines: the text of every visible element (dialogs, toasts,
// side panels), for an error's message
function errorTexts() {
  const texts = [];
  for (const e of document.querySelectorAll("body *")) {
    if (e.closest(".interdyn-drive-editor") || !e.getClientRects().length) continue;
    const own = e.tagName === "TEXTAREA" ? e.value
      : Array.from(e.childNodes).filter((n) => n.nodeType === 3).map((n) => n.textContent.trim()).filter(Boolean).join(" ");
    if (own) texts.push({ tag: e.tagName, text: own.slice(0, 1000) });
  }
  return texts;
}

async function openErrorDetails(page) {
  return page.evaluate(() => {
    const buttons = Array.from(document.querySelectorAll("button, a, [role='button']"))
      .filter((b) => b.getClientRects().length && /details|show report|see error/i.test(b.innerText || b.getAttribute("aria-label") || ""));
    for (const b of buttons) b.click();
    return buttons.map((b) => (b.innerText || b.getAttribute("aria-label") || "").trim().slice(0, 60));
  });
}

// A new node at its default size showing a 1024x576 picture: how large the picture is drawn (graph units)
async function defaultNodeView(page) {
  const id = await page.evaluate(() => {
    const node = window.LiteGraph.createNode("InterDynDriveEditor");
    node.pos = [3000, 3000];
    window.app.graph.add(node);
    node.interdynDrive.setSize(1024, 576);
    window.app.canvas.ds.offset = [-2900, -2950];
    window.app.canvas.setDirty(true, true);
    return node.id;
  });
  await sleep(1200);
  const result = await page.evaluate((id) => {
    const node = (window.app.graph._nodes || window.app.graph.nodes).find((n) => n.id === id);
    const e = node.interdynDrive, r = e.canvas.getBoundingClientRect(), scale = window.app.canvas.ds.scale;
    const s = Math.min(r.width / e.W, r.height / e.H);
    const out = { size: Array.from(node.size), scale, picture: [e.W * s / scale, e.H * s / scale],
      json_hidden: ["shape", "keyframes"].map((n) => !!node.widgets.find((w) => w.name === n).hidden) };
    window.app.graph.remove(node);
    return out;
  }, id);
  return result;
}

async function driveEditor(page, config) {
  const wf = config.workflows.find((w) => w.name === config.drive.workflow);
  const data = JSON.parse(fs.readFileSync(wf.path, "utf8"));
  const out = { steps: {}, screenshots: {} };
  out.default_node = await defaultNodeView(page);
  await page.evaluate(async (json, name) => { await window.app.loadGraphData(json, true, true, name); }, data, wf.name);
  let i = await waitFor(page, () => { const i = window.__driveInfo(); return i && i.bg ? i : null; }, 30000, "the editor's picture");
  out.loaded = i;
  await shot(page, config, out, "drive_editor_loaded");
  const P = (x, y) => toScreen(i, x, y); // from the latest info: the node may have been laid out again
  // the JSON widgets are folded; the toggle shows them and folds them again
  await clickCentre(page, i.buttons["json-toggle"]); await sleep(400);
  out.steps.json_shown = (await info(page)).json;
  await shot(page, config, out, "drive_editor_json_shown");
  i = await info(page);
  await clickCentre(page, i.buttons["json-toggle"]); await sleep(400);
  i = await info(page);
  out.steps.json_folded = i.json;
  await clickCentre(page, i.buttons["clear-shape"]);
  await clickCentre(page, i.buttons["tool-ellipse"]);
  i = await info(page);
  out.steps.cleared = { canvas: i.canvas };
  await drag(page, P(20, 24), P(36, 40)); // an ellipse inside (20, 24) - (36, 40): centre (28, 32)
  i = await info(page);
  out.steps.ellipse = { shape: i.widgets.shape, pivot: i.pivot };
  await clickCentre(page, i.buttons["tool-path"]);
  await clickCentre(page, i.buttons["reset-path"]);
  const clicks = [[44, 30], [62, 26], [80, 38]];
  for (const [x, y] of clicks) { i = await info(page); await clickWith(page, P(x, y)); }
  i = await info(page);
  out.steps.clicked = { keys: i.keys, keyframes: i.widgets.keyframes, points: clicks, canvas: i.canvas };
  // Ctrl+Z in the editor takes the last click back; the click again
  await page.keyboard.down("Control"); await page.keyboard.press("z"); await page.keyboard.up("Control"); await sleep(250);
  out.steps.undone = { keys: (await info(page)).keys };
  i = await info(page);
  await clickWith(page, P(...clicks[2]));
  // drag the second click's keyframe to a new place
  i = await info(page);
  await drag(page, P(...i.key_pos[2]), P(64, 18));
  i = await info(page);
  out.steps.dragged = { keys: i.keys, to: [64, 18] };
  // the last keyframe's frame number, typed in the list
  const last = i.frame_inputs[i.frame_inputs.length - 1];
  await page.mouse.click(last.x + last.w / 2, last.y + last.h / 2, { clickCount: 3 });
  await page.keyboard.type("13");
  await page.keyboard.press("Enter");
  await page.keyboard.press("Tab");
  await sleep(300);
  i = await info(page);
  out.steps.frame_typed = { keys: i.keys };
  // the first segment eases in and out (the list's select)
  await page.select(".interdyn-drive-editor .interdyn-key-easing", "ease_in_out");
  await sleep(300);
  i = await info(page);
  out.steps.eased = { keys: i.keys };
  // scrub to frame 2 on the timeline (free: a click adds a key there), at another zoom and node size (then undone)
  const beforeZoom = i.canvas;
  await page.evaluate(() => {
    const node = (window.app.graph._nodes || window.app.graph.nodes).find((n) => n.type === "InterDynDriveEditor");
    window.app.canvas.ds.scale *= 1.25;
    node.setSize([node.size[0] + 120, node.size[1] + 80]);
    window.app.canvas.setDirty(true, true);
  });
  await sleep(600);
  i = await info(page);
  await clickWith(page, stripPoint(i, i.strip_x[2]).map((v, n) => (n ? i.strip.y + 32 : v)));
  out.steps.scrubbed = { frame: (await info(page)).frame };
  i = await info(page);
  await clickWith(page, P(30, 50));
  const zoomed = await info(page);
  out.steps.zoomed = { keys: zoomed.keys, pivot: zoomed.pivot, point: [30, 50], canvas: zoomed.canvas, before: beforeZoom };
  await page.keyboard.down("Control"); await page.keyboard.press("z"); await page.keyboard.up("Control"); await sleep(250);
  i = await info(page);
  out.drawn = i;
  await shot(page, config, out, "drive_editor_drawn");
  // save and reload the workflow: the editor shows the same drive
  const saved = await page.evaluate(() => window.app.graph.serialize());
  out.saved_workflow = saved;
  await page.evaluate(async (json) => { await window.app.loadGraphData(json, true, true, "reloaded.json"); }, saved);
  out.reloaded = await waitFor(page, () => { const i = window.__driveInfo(); return i && i.bg ? i : null; }, 30000, "the reloaded editor");
  // an edit typed in the text widget shows in the canvas
  out.typed = await page.evaluate(async () => {
    const node = (window.app.graph._nodes || window.app.graph.nodes).find((n) => n.type === "InterDynDriveEditor");
    const w = node.widgets.find((x) => x.name === "keyframes");
    const before = w.value;
    w.value = '[{"frame": 0}, {"frame": 5, "x": 7, "y": 3}]';
    await new Promise((r) => setTimeout(r, 900));
    const keys = node.interdynDrive.keys.map((k) => ({ ...k }));
    w.value = before;
    await new Promise((r) => setTimeout(r, 900));
    return { keys, restored: node.interdynDrive.keys.map((k) => ({ ...k })) };
  });
  // Run: the drawn drive through MaskToImage into SaveImage (the sampling part of the workflow is not needed)
  await page.evaluate(() => {
    const graph = window.app.graph;
    const nodes = graph._nodes || graph.nodes;
    const editor = nodes.find((n) => n.type === "InterDynDriveEditor");
    for (const n of [...nodes]) if (n !== editor && n.type !== "LoadImage") graph.remove(n);
    const toImage = window.LiteGraph.createNode("MaskToImage");
    toImage.pos = [editor.pos[0] + editor.size[0] + 40, editor.pos[1]];
    graph.add(toImage);
    editor.connect(0, toImage, 0);
    const save = window.LiteGraph.createNode("SaveImage");
    save.pos = [toImage.pos[0], toImage.pos[1] + 120];
    graph.add(save);
    toImage.connect(0, save, 0);
  });
  out.run = await runDrive(page, config.drive.prefix);
  out.after_run = out.run.after;
  await shot(page, config, out, "drive_editor_after_run");

  // ---- a new picture size: the square image, run again
  await page.evaluate((name) => {
    const load = (window.app.graph._nodes || window.app.graph.nodes).find((n) => n.type === "LoadImage");
    const w = load.widgets.find((x) => x.name === "image");
    w.value = name; w.callback?.(name, window.app.canvas, load);
  }, config.drive.square_image);
  out.resized = await waitFor(page, () => { const i = window.__driveInfo(); return i && i.W !== 96 ? i : null; }, 30000, "the new picture");
  await shot(page, config, out, "drive_editor_new_size");
  out.run_resized = await runDrive(page, config.drive.prefixes.square);

  // ---- the timeline: a key dragged in time, the scrubber
  i = await info(page);
  const P2 = (x, y) => toScreen(i, x, y);
  out.steps.before_timeline = { keys: i.keys };
  await drag(page, stripPoint(i, i.mark_x[1]), stripPoint(i, i.strip_x[6]), 6);
  i = await info(page);
  out.steps.timeline_dragged = { keys: i.keys, frame: i.frame };
  await clickWith(page, [i.strip.x + i.strip_x[10], i.strip.y + 32]);
  i = await info(page);
  out.steps.timeline_scrubbed = { frame: i.frame };
  await shot(page, config, out, "drive_editor_timeline");
  // ---- refusals stay in the message line until the next action
  await clickWith(page, [i.strip.x + i.strip_x[13], i.strip.y + 32]); // frame 13 has a key, and it is the last frame
  i = await info(page);
  await clickWith(page, P2(100, 100));
  await sleep(1300); // three of the editor's timer ticks and renders
  i = await info(page);
  out.steps.no_free_frame = { keys: i.keys, message: i.message };
  await shot(page, config, out, "drive_editor_refused");
  const pic = pictureRect(i), c = i.canvas;
  const margin = c.w - pic.w > c.h - pic.h ? [c.x + (pic.x - c.x) / 2, c.y + c.h / 2] : [c.x + c.w / 2, c.y + (pic.y - c.y) / 2];
  out.steps.off_picture_point = { margin, picture: pic, canvas: c };
  await clickWith(page, margin);
  i = await info(page);
  out.steps.off_picture = { keys: i.keys, message: i.message };
  await clickWith(page, [i.strip.x + i.strip_x[5], i.strip.y + 32]);
  out.steps.next_action = { message: (await info(page)).message };
  // ---- path tools: right-click removes a key, Shift-click appends, Ctrl-click inserts, Delete removes
  i = await info(page);
  const keyAt = (i, frame) => i.keys.findIndex((k) => k.frame === frame);
  const keyScreen = (i, frame) => toScreen(i, ...i.key_pos[keyAt(i, frame)]);
  await clickWith(page, keyScreen(i, 13), { button: "right" });
  i = await info(page);
  out.steps.right_clicked = { keys: i.keys };
  await clickWith(page, P2(110, 40), { key: "Shift" });
  i = await info(page);
  out.steps.shift_clicked = { keys: i.keys, point: [110, 40] };
  const a = i.key_pos[keyAt(i, 0)], b = i.key_pos[keyAt(i, 6)];
  const mid = [(a[0] + b[0]) / 2 + 1, (a[1] + b[1]) / 2 + 1];
  await clickWith(page, toScreen(i, ...mid), { key: "Control" });
  i = await info(page);
  out.steps.ctrl_clicked = { keys: i.keys, point: mid };
  await clickWith(page, keyScreen(i, 8));
  await page.keyboard.press("Delete"); await sleep(300);
  i = await info(page);
  out.steps.deleted = { keys: i.keys };
  // ---- the menu: right-click off the keys; the selected segment's easing
  await clickWith(page, keyScreen(i, 3));
  await clickWith(page, P2(120, 120), { button: "right" });
  i = await info(page);
  out.steps.menu = i.menu;
  await shot(page, config, out, "drive_editor_menu");
  const easeOut = i.menu.items.find((x) => x.cls.includes("interdyn-menu-easing-ease_out"));
  if (easeOut) await clickCentre(page, easeOut);
  await sleep(300);
  i = await info(page);
  out.steps.menu_eased = { keys: i.keys, menu_visible: i.menu.visible };
  // ---- near each edge: the handles stay on the picture; at the top one, scale and rotate by them
  out.steps.edges = {};
  for (const [edge, to] of [["left", [3, 64]], ["bottom", [64, i.H - 3]], ["right", [i.W - 3, 64]], ["top", [100, 3]]]) {
    await drag(page, keyScreen(i, 12), P2(...to));
    i = await info(page);
    out.steps.edges[edge] = { key: i.keys[keyAt(i, 12)], handles: i.handles, selected: i.selected, to, W: i.W, H: i.H };
  }
  const k12 = () => i.keys[keyAt(i, 12)];
  const s0 = k12().scale;
  { const h = i.handles, cx = h.centre, sc = h.scale; await drag(page, P2(...sc), P2(cx[0] + (sc[0] - cx[0]) * 2, cx[1] + (sc[1] - cx[1]) * 2)); }
  i = await info(page);
  out.steps.scaled = { scale_before: s0, scale: k12().scale, handles: i.handles, W: i.W, H: i.H };
  const r0 = k12().rotation;
  { const h = i.handles, cx = h.centre, ro = h.rotate; const dx = ro[0] - cx[0], dy = ro[1] - cx[1];
    // a quarter turn clockwise on screen (y down), dragged along the arc
    const arc = [1, 2, 3, 4, 5, 6].map((n) => { const t = n / 6 * Math.PI / 2; return P2(cx[0] + dx * Math.cos(t) - dy * Math.sin(t), cx[1] + dx * Math.sin(t) + dy * Math.cos(t)); });
    await page.mouse.move(...P2(...ro)); await page.mouse.down();
    for (const q of arc) await page.mouse.move(q[0], q[1]);
    await page.mouse.up(); await sleep(250); }
  i = await info(page);
  out.steps.rotated = { rotation_before: r0, rotation: k12().rotation, handles: i.handles };
  await shot(page, config, out, "drive_editor_edge_handles");
  // ---- a key whose centre lies off the picture: drawn on the edge, dragged back in
  const text = JSON.parse(i.widgets.keyframes);
  const keys = text.keyframes || text;
  const scaleBack = text.size ? text.size[0] / i.W : 1;
  keys[keys.length - 1].x = (-29.5 - i.pivot[0]) * scaleBack;
  await setWidget(page, "keyframes", JSON.stringify(text));
  i = await info(page);
  out.steps.off_key = { keys: i.keys, key_pos: i.key_pos, pivot: i.pivot };
  await shot(page, config, out, "drive_editor_key_off_picture");
  await drag(page, toScreen(i, ...i.key_pos[i.keys.length - 1]), P2(50, 30));
  i = await info(page);
  out.steps.off_key_dragged = { keys: i.keys, to: [50, 30], pivot: i.pivot };
  // ---- fewer frames: the keys past the end are flagged
  await setWidget(page, "frames", 8);
  i = await info(page);
  out.steps.fewer_frames = { keys: i.keys, list_rows: i.list_rows, status: i.status, flags: i.flags, list_box: i.list_box,
    message_box: i.message_box, status_box: i.status_box };
  await shot(page, config, out, "drive_editor_fewer_frames");
  // ---- a connected track (a primitive string node), run: the canvas draws it; the warnings of the run
  await page.evaluate((track) => {
    const graph = window.app.graph;
    const editor = (graph._nodes || graph.nodes).find((n) => n.type === "InterDynDriveEditor");
    const prim = window.LiteGraph.createNode("PrimitiveStringMultiline");
    prim.pos = [editor.pos[0] - 360, editor.pos[1] + 420];
    graph.add(prim);
    prim.widgets[0].value = track;
    prim.connect(0, editor, editor.findInputSlot("coordinates"));
    window.app.canvas.setDirty(true, true);
  }, config.drive.track);
  await sleep(900);
  out.track_before_run = await info(page);
  out.run_track = await runDrive(page, config.drive.prefixes.track);
  await shot(page, config, out, "drive_editor_track");
  // ---- a node error, as the page shows it
  await setWidget(page, "keyframes", '[{"frame": 0, "x": 1e308}]');
  phase.name = "error_run"; // the page may log the deliberate error: the console check reads only its stack's files then
  out.run_error = await runDrive(page, config.drive.prefixes.error);
  out.run_error.texts = await page.evaluate(errorTexts);
  await shot(page, config, out, "drive_editor_error");
  out.run_error.details_buttons = await openErrorDetails(page);
  await sleep(800);
  out.run_error.texts_details = await page.evaluate(errorTexts);
  await shot(page, config, out, "drive_editor_error_details");
  await page.keyboard.press("Escape"); await sleep(300);
  phase.name = "drive";
  // ---- Reset path from the menu
  await setWidget(page, "keyframes", '[{"frame": 0}, {"frame": 5, "x": 10}]');
  i = await info(page);
  await clickWith(page, toScreen(i, 5, 5), { button: "right" });
  i = await info(page);
  const reset = i.menu.items.find((x) => x.cls.includes("interdyn-menu-reset-path"));
  if (reset) await clickCentre(page, reset);
  await sleep(300);
  out.steps.menu_reset = { keys: (await info(page)).keys };
  return out;
}

async function main() {
  const config = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  const report = { workflows: {}, console_errors: [], console: [], viewport: config.viewport };
  const browser = await puppeteer.launch({ executablePath: config.chromium, headless: true, args: CHROMIUM_FLAGS,
    defaultViewport: config.viewport });
  try {
    const page = await browser.newPage();
    page.on("console", (m) => {
      const type = m.type();
      if (type === "error") report.console_errors.push(m.text().slice(0, 500));
      if (type === "error" || type === "warn" || type === "warning") {
        report.console.push({ type, phase: phase.name, text: m.text().slice(0, 1000), urls: (m.stackTrace() || []).map((f) => f.url).filter(Boolean) });
      }
    });
    page.on("pageerror", (e) => {
      report.console_errors.push(String(e).slice(0, 500));
      report.console.push({ type: "pageerror", phase: phase.name, text: String(e && e.stack || e).slice(0, 2000), urls: [] });
    });
    const t0 = Date.now();
    await page.goto(config.url, { waitUntil: "domcontentloaded", timeout: 120000 });
    await waitFor(page, () => !!(window.app && window.app.graph && window.app.canvas && window.LiteGraph), 120000,
      "the ComfyUI app");
    await waitFor(page, () => Object.keys(window.LiteGraph.registered_node_types).length > 50, 60000, "node types");
    report.page_ready_s = (Date.now() - t0) / 1000;
    // every use of an API the frontend deprecates, with the stack that made it (not only the first per session)
    await page.evaluate(() => {
      window.__deprecations = [];
      const lg = window.LiteGraph;
      if (lg && Array.isArray(lg.onDeprecationWarning)) {
        lg.alwaysRepeatWarnings = true;
        lg.onDeprecationWarning.push((message) => window.__deprecations.push({ message: String(message).slice(0, 500), stack: String(new Error().stack).slice(0, 3000) }));
      }
    });
    report.frontend = await page.evaluate(() => window.__COMFYUI_FRONTEND_VERSION__ || null);
    await sleep(1500); // first-run dialogs and the default graph settle
    await page.keyboard.press("Escape");

    for (const wf of config.workflows) {
      const data = JSON.parse(fs.readFileSync(wf.path, "utf8"));
      const t = Date.now();
      const error = await page.evaluate(async (json, name) => {
        try { await window.app.loadGraphData(json, true, true, name); return null; } catch (e) { return String(e); }
      }, data, wf.name);
      await sleep(1000); // the canvas draws and DOM widgets (Notes) are placed
      const info = await page.evaluate(inspectGraph);
      info.load_error = error;
      info.load_s = (Date.now() - t) / 1000;
      info.screenshot = path.join(config.screenshots, wf.name.replace(/\.json$/, ".png"));
      await page.screenshot({ path: info.screenshot });
      report.workflows[wf.name] = info;
    }

    report.runs = {};
    for (const runName of (Array.isArray(config.run) ? config.run : (config.run ? [config.run] : []))) {
      const wf = config.workflows.find((w) => w.name === runName);
      const data = JSON.parse(fs.readFileSync(wf.path, "utf8"));
      await page.evaluate(async (json, name) => { await window.app.loadGraphData(json, true, true, name); }, data, wf.name);
      await sleep(500);
      const before = await page.evaluate(async () => Object.keys(await (await fetch("/history")).json()));
      const t = Date.now();
      const queued = await page.evaluate(async () => {
        try { const r = await window.app.queuePrompt(0, 1); return { ok: true, result: r === undefined ? null : r }; }
        catch (e) { return { ok: false, error: String(e) }; }
      });
      const run = { queued, errors_shown: [] };
      // a validation error shows a dialog and marks nodes; the prompt then never reaches /history
      const entry = await waitForRun(page, before, config.run_timeout_s * 1000, "the run to finish");
      run.seconds = (Date.now() - t) / 1000;
      Object.assign(run, entry);
      if (entry.status === "success") {
        await sleep(1500); // previews are drawn on the Save nodes
        run.previews = await page.evaluate(() => (window.app.graph._nodes || window.app.graph.nodes)
          .filter((n) => n.imgs && n.imgs.length || (window.app.nodeOutputs && window.app.nodeOutputs[String(n.id)]))
          .map((n) => ({ id: n.id, type: n.type, images: (n.imgs || []).length })));
        run.after = await page.evaluate(inspectGraph); // previews grow nodes: layout checked again after the run
        run.screenshot = path.join(config.screenshots, runName.replace(/\.json$/, "_after_run.png"));
        await page.screenshot({ path: run.screenshot });
      }
      report.runs[runName] = run;
      if (!report.run) report.run = run; // the first one (the toy workflow) under its old name
    }

    if (config.drive) {
      await page.evaluate(`window.__driveInfo = ${driveInfo.toString()};`);
      phase.name = "drive";
      report.drive = await driveEditor(page, config);
    }
    report.deprecations = await page.evaluate(() => window.__deprecations || []);
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(report));
}

main().catch((e) => { process.stderr.write(String(e && e.stack || e) + "\n"); process.exit(1); });
