// Drives ComfyUI's own web page in headless Chromium (puppeteer-core), as a user would.
// Used by tests/test_comfyui_browser.py; the Python test makes the assertions.
//
//   node tests/comfyui_browser.js config.json > report.json
//
// config: {url, chromium, viewport: {width, height}, screenshots: folder,
//          workflows: [{name, path}], run: name of the workflow to run with the Run button or null,
//          run_timeout_s}
// report: {frontend, viewport, workflows: {name: {...}}, run: {...}, console_errors: [...]}
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
      const entry = await waitFor(page, async (known) => {
        const dialog = Array.from(document.querySelectorAll(".p-dialog")).map((d) => d.innerText).join("\n");
        if (/failed validation|Prompt execution failed|Error/i.test(dialog)) return { dialog: dialog.slice(0, 2000) };
        const history = await (await fetch("/history")).json();
        for (const [id, e] of Object.entries(history)) {
          if (known.includes(id)) continue;
          const status = e.status && e.status.status_str;
          if (status === "success" || status === "error") return { id, status, messages: e.status.messages, outputs: e.outputs };
        }
        return null;
      }, config.run_timeout_s * 1000, "the run to finish", before);
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
  } finally {
    await browser.close();
  }
  process.stdout.write(JSON.stringify(report));
}

main().catch((e) => { process.stderr.write(String(e && e.stack || e) + "\n"); process.exit(1); });
