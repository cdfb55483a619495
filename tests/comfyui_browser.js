// Drives ComfyUI's own web page in headless Chromium (puppeteer-core), as a user would.
// Used by tests/test_comfyui_browser.py; the Python test makes the assertions.
//
//   node tests/comfyui_browser.js config.json > report.json
//
// config: {url, chromium, viewport: {width, height}, screenshots: folder,
//          workflows: [{name, path}], run: name of the workflow to run with the Run button or null,
//          run_timeout_s, drive: {workflow, prefix} or null}
// report: {frontend, viewport, workflows: {name: {...}}, run: {...}, drive: {...}, console_errors: [...]}
"use strict";
const fs = require("fs");
const path = require("path");
const puppeteer = require("puppeteer-core");

const CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
  "--disable-component-update", "--disable-sync", "--no-first-run"];

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
function driveInfo() {
  const node = (window.app.graph._nodes || window.app.graph.nodes).find((n) => n.type === "InterDynDriveEditor");
  if (!node || !node.interdynDrive) return null;
  const e = node.interdynDrive;
  const rect = (x) => { const r = x.getBoundingClientRect(); return { x: r.x, y: r.y, w: r.width, h: r.height }; };
  const q = (sel) => e.root.querySelector(sel);
  const w = (name) => node.widgets.find((x) => x.name === name).value;
  return { id: node.id, W: e.W, H: e.H, bg: !!e.bg, canvas: rect(e.canvas), pivot: e.pivot, keys: e.keys, shape: e.shape,
    tool: e.tool, status: e.status.textContent, error: e.error,
    widgets: { shape: w("shape"), keyframes: w("keyframes"), frames: w("frames") },
    buttons: Object.fromEntries(["tool-path", "tool-ellipse", "tool-rect", "tool-brush", "undo", "reset-path", "clear-shape"]
      .map((c) => [c, q(`.interdyn-${c}`) ? rect(q(`.interdyn-${c}`)) : null])),
    frame_inputs: Array.from(e.root.querySelectorAll(".interdyn-key-frame")).map(rect),
    serialized_widgets: node.serialize().widgets_values };
}

function toScreen(info, x, y) { // image pixels -> page pixels (the canvas keeps the picture's aspect: object-fit contain)
  const c = info.canvas, s = Math.min(c.w / info.W, c.h / info.H);
  return [c.x + (c.w - info.W * s) / 2 + x * s, c.y + (c.h - info.H * s) / 2 + y * s];
}

async function clickCentre(page, r) { await page.mouse.click(r.x + r.w / 2, r.y + r.h / 2); await sleep(150); }

async function drag(page, from, to, steps = 8) {
  await page.mouse.move(from[0], from[1]);
  await page.mouse.down();
  for (let i = 1; i <= steps; i++) await page.mouse.move(from[0] + (to[0] - from[0]) * i / steps, from[1] + (to[1] - from[1]) * i / steps);
  await page.mouse.up();
  await sleep(200);
}

async function driveEditor(page, config) {
  const wf = config.workflows.find((w) => w.name === config.drive.workflow);
  const data = JSON.parse(fs.readFileSync(wf.path, "utf8"));
  await page.evaluate(async (json, name) => { await window.app.loadGraphData(json, true, true, name); }, data, wf.name);
  const out = { steps: {} };
  let info = await waitFor(page, () => { const i = window.__driveInfo(); return i && i.bg ? i : null; }, 30000, "the editor's picture");
  out.loaded = info;
  const P = (x, y) => toScreen(info, x, y); // from the latest info: the node may have been laid out again
  await clickCentre(page, info.buttons["clear-shape"]);
  await clickCentre(page, info.buttons["tool-ellipse"]);
  await drag(page, P(20, 24), P(36, 40)); // an ellipse inside (20, 24) - (36, 40): centre (28, 32)
  info = await page.evaluate(() => window.__driveInfo());
  out.steps.ellipse = { shape: info.widgets.shape, pivot: info.pivot };
  await clickCentre(page, info.buttons["tool-path"]);
  await clickCentre(page, info.buttons["reset-path"]);
  info = await page.evaluate(() => window.__driveInfo());
  const clicks = [[44, 30], [62, 26], [80, 38]];
  for (const [x, y] of clicks) {
    info = await page.evaluate(() => window.__driveInfo());
    const [sx, sy] = P(x, y); await page.mouse.click(sx, sy); await sleep(200);
  }
  info = await page.evaluate(() => window.__driveInfo());
  out.steps.clicked = { keys: info.keys, keyframes: info.widgets.keyframes, points: clicks };
  // Ctrl+Z in the editor takes the last click back; the click again
  await page.keyboard.down("Control"); await page.keyboard.press("z"); await page.keyboard.up("Control"); await sleep(200);
  out.steps.undone = { keys: (await page.evaluate(() => window.__driveInfo())).keys };
  info = await page.evaluate(() => window.__driveInfo());
  { const [sx, sy] = P(...clicks[2]); await page.mouse.click(sx, sy); await sleep(200); }
  // drag the second click's keyframe to a new place
  info = await page.evaluate(() => window.__driveInfo());
  const k = info.keys[2];
  await drag(page, P(info.pivot[0] + k.x, info.pivot[1] + k.y), P(64, 18));
  info = await page.evaluate(() => window.__driveInfo());
  out.steps.dragged = { keys: info.keys, to: [64, 18] };
  // the last keyframe's frame number, typed in the timeline
  const last = info.frame_inputs[info.frame_inputs.length - 1];
  await page.mouse.click(last.x + last.w / 2, last.y + last.h / 2, { clickCount: 3 });
  await page.keyboard.type("13");
  await page.keyboard.press("Enter");
  await page.keyboard.press("Tab");
  await sleep(300);
  info = await page.evaluate(() => window.__driveInfo());
  out.steps.frame_typed = { keys: info.keys };
  // the first segment eases in and out (the timeline's select)
  await page.select(".interdyn-drive-editor .interdyn-key-easing", "ease_in_out");
  await sleep(300);
  info = await page.evaluate(() => window.__driveInfo());
  out.steps.eased = { keys: info.keys };
  // another zoom of the graph and another node size: a click still lands where it points (then undone)
  const beforeZoom = info.canvas;
  await page.evaluate(() => {
    const node = (window.app.graph._nodes || window.app.graph.nodes).find((n) => n.type === "InterDynDriveEditor");
    const scrub = node.interdynDrive.scrub; // scrub to frame 2, which has no keyframe: the click adds one there
    scrub.value = "2"; scrub.dispatchEvent(new Event("input"));
    window.app.canvas.ds.scale *= 1.25;
    node.setSize([node.size[0] + 120, node.size[1] + 80]);
    window.app.canvas.setDirty(true, true);
  });
  await sleep(600);
  info = await page.evaluate(() => window.__driveInfo());
  { const [sx, sy] = P(30, 50); await page.mouse.click(sx, sy); await sleep(250); }
  const zoomed = await page.evaluate(() => window.__driveInfo());
  out.steps.zoomed = { keys: zoomed.keys, pivot: zoomed.pivot, point: [30, 50], canvas: zoomed.canvas, before: beforeZoom };
  await page.keyboard.down("Control"); await page.keyboard.press("z"); await page.keyboard.up("Control"); await sleep(250);
  info = await page.evaluate(() => window.__driveInfo());
  out.drawn = info;
  out.screenshot = path.join(config.screenshots, "drive_editor_drawn.png");
  await page.screenshot({ path: out.screenshot });
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
  const before = await page.evaluate(async () => Object.keys(await (await fetch("/history")).json()));
  out.queued = await page.evaluate(async (prefix) => {
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
    save.widgets.find((w) => w.name === "filename_prefix").value = prefix;
    try { await window.app.queuePrompt(0, 1); return { ok: true }; } catch (e) { return { ok: false, error: String(e) }; }
  }, config.drive.prefix);
  const entry = await waitForRun(page, before, 120000, "the drive run");
  Object.assign(out, { run: entry });
  await sleep(800);
  out.after_run = await page.evaluate(() => window.__driveInfo());
  out.screenshot_run = path.join(config.screenshots, "drive_editor_after_run.png");
  await page.screenshot({ path: out.screenshot_run });
  return out;
}

async function main() {
  const config = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  const report = { workflows: {}, console_errors: [], viewport: config.viewport };
  const browser = await puppeteer.launch({ executablePath: config.chromium, headless: true, args: CHROMIUM_FLAGS,
    defaultViewport: config.viewport });
  try {
    const page = await browser.newPage();
    page.on("console", (m) => { if (m.type() === "error") report.console_errors.push(m.text().slice(0, 500)); });
    page.on("pageerror", (e) => report.console_errors.push(String(e).slice(0, 500)));
    const t0 = Date.now();
    await page.goto(config.url, { waitUntil: "domcontentloaded", timeout: 120000 });
    await waitFor(page, () => !!(window.app && window.app.graph && window.app.canvas && window.LiteGraph), 120000,
      "the ComfyUI app");
    await waitFor(page, () => Object.keys(window.LiteGraph.registered_node_types).length > 50, 60000, "node types");
    report.page_ready_s = (Date.now() - t0) / 1000;
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

    if (config.run) {
      const wf = config.workflows.find((w) => w.name === config.run);
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
        run.screenshot = path.join(config.screenshots, config.run.replace(/\.json$/, "_after_run.png"));
        await page.screenshot({ path: run.screenshot });
      }
      report.run = run;
    }

    if (config.drive) {
      await page.evaluate(`window.__driveInfo = ${driveInfo.toString()};`);
      report.drive = await driveEditor(page, config);
    }
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(report));
}

main().catch((e) => { process.stderr.write(String(e && e.stack || e) + "\n"); process.exit(1); });
