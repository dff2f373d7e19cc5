// A small remote control for Chromium, for the Python browser tests (tests/browser): one JSON command per
// line on stdin, one JSON answer per line on stdout. playwright-core drives Debian's chromium through
// executablePath (CHROMIUM, default /usr/bin/chromium); Playwright never downloads a browser.
import { createRequire } from "node:module";
import readline from "node:readline";

import { chromium } from "playwright-core";

const require = createRequire(import.meta.url);
const executablePath = process.env.CHROMIUM || "/usr/bin/chromium";
// Chromium's sandbox needs user namespaces a root process in a container does not get.
const args = process.getuid && process.getuid() === 0 ? ["--no-sandbox"] : [];
const browser = await chromium.launch({ executablePath, args, headless: true });
const contexts = new Map();
const pages = new Map();
let nextId = 1;

function page(id) {
  const found = pages.get(id);
  if (!found) throw new Error(`no page ${id}`);
  return found;
}

const commands = {
  async version() {
    return browser.version();
  },
  async open({ locale = "en-US", baseURL, holdable = false }) {
    const context = await browser.newContext({ locale, baseURL, viewport: { width: 1280, height: 900 } });
    const p = await context.newPage();
    if (holdable) {
      // The page's websockets through Playwright, so a test can hold back what the server sends (holdRealtime):
      // the page stays behind the database while its requests still go through, as a slow live channel would.
      p.held = false;
      p.heldFrames = []; // [socket, frame] in the order the server sent them
      await p.routeWebSocket(/.*/, (ws) => {
        const server = ws.connectToServer();
        ws.onMessage((m) => server.send(m));
        server.onMessage((m) => (p.held ? p.heldFrames.push([ws, m]) : ws.send(m)));
      });
    }
    const id = nextId++;
    const errors = [];
    p.on("pageerror", (e) => errors.push(String(e)));
    // What the page did, on stderr: pytest shows it with a failing test.
    const note = (text) => process.stderr.write(`[page ${id} ${new Date().toISOString()}] ${text}\n`);
    p.on("console", (m) => note(`console.${m.type()}: ${m.text().slice(0, 300)}`));
    p.on("framenavigated", (f) => f === p.mainFrame() && note(`at ${f.url()}`));
    p.on("response", (r) => r.status() >= 400 && note(`HTTP ${r.status()} ${r.request().method()} ${r.url().split("?")[0]}`));
    p.errors = errors;
    contexts.set(id, context);
    pages.set(id, p);
    return id;
  },
  async goto({ page: id, url }) {
    await page(id).goto(url);
    return page(id).url();
  },
  async url({ page: id }) {
    return page(id).url();
  },
  async fill({ page: id, selector, value }) {
    await page(id).locator(selector).fill(value);
  },
  async press({ page: id, selector, key }) {
    await page(id).locator(selector).press(key);
  },
  async click({ page: id, selector }) {
    await page(id).locator(selector).first().click();
  },
  async selectOption({ page: id, selector, value }) {
    await page(id).locator(selector).first().selectOption(value);
  },
  async holdRealtime({ page: id, hold }) {
    const p = page(id);
    if (!("held" in p)) throw new Error("open the page with holdable: true");
    p.held = hold;
    const held = hold ? [] : p.heldFrames.splice(0);
    for (const [ws, frame] of held) ws.send(frame); // what the server sent meanwhile, in order
    return held.length;
  },
  async dblclick({ page: id, selector }) {
    await page(id).locator(selector).first().dblclick();
  },
  async waitFor({ page: id, selector, state = "visible", timeout = 10000 }) {
    await page(id).locator(selector).first().waitFor({ state, timeout });
  },
  async waitForUrl({ page: id, pattern, timeout = 10000 }) {
    await page(id).waitForURL(new RegExp(pattern), { timeout });
    return page(id).url();
  },
  async texts({ page: id, selector }) {
    return page(id).locator(selector).allInnerTexts();
  },
  async count({ page: id, selector }) {
    return page(id).locator(selector).count();
  },
  async attr({ page: id, selector, name }) {
    return page(id).locator(selector).first().getAttribute(name);
  },
  async value({ page: id, selector }) {
    return page(id).locator(selector).inputValue();
  },
  async focusOrder({ page: id, presses = 30 }) {
    // What Tab reaches, in order: every control must be reachable by keyboard.
    const seen = [];
    for (let i = 0; i < presses; i++) {
      await page(id).keyboard.press("Tab");
      seen.push(
        await page(id).evaluate(() => {
          const el = document.activeElement;
          if (!el || el === document.body) return null;
          return el.getAttribute("data-tab") || el.getAttribute("id") || el.getAttribute("name") || el.textContent?.trim() || el.tagName;
        }),
      );
    }
    return seen;
  },
  async cookies({ page: id }) {
    return (await page(id).context().cookies()).map(({ name, value }) => ({ name, value }));
  },
  async clearCookies({ page: id }) {
    await page(id).context().clearCookies();
  },
  async reload({ page: id }) {
    await page(id).reload();
  },
  async screenshot({ page: id, path }) {
    await page(id).screenshot({ path, fullPage: true });
    return path;
  },
  async axe({ page: id }) {
    const p = page(id);
    await p.addScriptTag({ path: require.resolve("axe-core/axe.min.js") });
    const result = await p.evaluate(async () => {
      const run = await axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"] } });
      return run.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map((n) => n.target.join(" ")) }));
    });
    return result;
  },
  async errors({ page: id }) {
    return page(id).errors;
  },
  async close({ page: id }) {
    await contexts.get(id)?.close();
    contexts.delete(id);
    pages.delete(id);
  },
};

const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let answer;
  try {
    const { cmd, ...params } = JSON.parse(line);
    const handler = commands[cmd];
    if (!handler) throw new Error(`unknown command ${cmd}`);
    answer = { ok: true, value: (await handler(params)) ?? null };
  } catch (e) {
    answer = { ok: false, error: e instanceof Error ? e.message : String(e) };
  }
  process.stdout.write(JSON.stringify(answer) + "\n");
}
await browser.close();
