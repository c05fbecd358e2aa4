// The Mesh dashboard in headless Chromium, against a running `mesh up`: sign-in (a
// wrong key refused), live agents, tasks and workflows without reloads, a workflow
// started from the UI resumed from the UI, the failed-only view, batch cancel, a
// dropped event stream resumed without a gap, tools and knowledge, shared documents
// edited live (the browser, the Python agent and REST at once); screenshots of every
// page at 1280 and 390 px; axe-core on every page. Run by examples/tests/dashboard.rs,
// which starts the server and reads the results file this writes.
//
// Environment: MESH_URL, MESH_KEY, MESH_PYTHON and MESH_AGENT (the Python reference
// agent), MESH_SHOTS (a directory for the screenshots), MESH_RESULTS (a JSON file),
// CHROMIUM (default /usr/bin/chromium).

import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const URL = process.env.MESH_URL;
const KEY = process.env.MESH_KEY;
const SHOTS = process.env.MESH_SHOTS;
const RESULTS = process.env.MESH_RESULTS;
const AXE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const results = { steps: [], latency_ms: {}, axe: {}, screenshots: [] };
const children = [];

function step(name) {
  console.log(`-- ${name}`);
  results.steps.push(name);
}

async function api(path, body, method) {
  const res = await fetch(URL + path, {
    method: method ?? (body === undefined ? 'GET' : 'POST'),
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${path}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

async function until(what, check, ms = 20000) {
  const started = Date.now();
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() - started > ms) throw new Error(`never: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// When (Date.now(), in the page) an element matching `selector` is first there: a
// MutationObserver's answer, not Playwright's polling interval.
function appearsAt(page, selector) {
  return page.evaluate((sel) => new Promise((resolve) => {
    const check = () => {
      if (!document.querySelector(sel)) return false;
      resolve(Date.now());
      return true;
    };
    if (check()) return;
    const observer = new MutationObserver(() => { if (check()) observer.disconnect(); });
    observer.observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
  }), selector);
}

const pages = [];
let current = null; // the page, for a screenshot of a failure
async function shoot(page, name) {
  if (!SHOTS) return;
  mkdirSync(SHOTS, { recursive: true });
  for (const width of [1280, 390]) {
    await page.setViewportSize({ width, height: width === 1280 ? 900 : 844 });
    await page.waitForTimeout(150); // layout settles after the resize
    const file = join(SHOTS, `${name}-${width}.png`);
    await page.screenshot({ path: file, fullPage: true });
    results.screenshots.push(file);
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

async function audit(page, name) {
  await page.addScriptTag({ content: AXE });
  const found = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa'] } });
    return { violations: r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, help: v.help, targets: v.nodes.slice(0, 5).map((n) => n.target.join(' ') + ' ' + (n.failureSummary || '').slice(0, 200)) })), passes: r.passes.length };
  });
  results.axe[name] = found;
  pages.push(name);
}

// Visits a page, waits for `ready`, then audits it — and screenshots it for the docs
// unless `shot` is false.
async function visit(page, hash, ready, name, shot = true) {
  await page.evaluate((h) => { location.hash = h; }, hash);
  await page.waitForSelector(ready);
  if (shot) await shoot(page, name);
  await audit(page, name);
}

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--no-first-run'],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, bypassCSP: true });
    const page = await context.newPage();
    current = page;
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));

    step('no data without credentials');
    for (const path of ['/api/v1/overview', '/api/v1/agents', '/api/v1/events']) {
      const res = await fetch(URL + path);
      if (res.status !== 401) throw new Error(`${path} answered ${res.status} without credentials`);
    }

    step('first load');
    await page.goto(`${URL}/ui/`);
    await page.waitForSelector('#credential');
    results.transfer_bytes = await page.evaluate(() => {
      const nav = performance.getEntriesByType('navigation')[0];
      return performance.getEntriesByType('resource').reduce((n, r) => n + r.transferSize, nav.transferSize);
    });
    await shoot(page, 'signin');
    await audit(page, 'signin');

    step('a wrong key is refused');
    await page.fill('#credential', 'not-a-key-not-a-key');
    await page.click('button[type=submit]');
    await page.waitForSelector('#signin-error:has-text("Refused")');

    step('sign in');
    await page.fill('#credential', KEY);
    await page.click('button[type=submit]');
    await page.waitForSelector('h1:has-text("Overview")');
    await page.waitForSelector('td:has-text("store")');
    await page.waitForSelector('#live:has-text("live")');

    step('an agent connects and appears without a reload');
    await visit(page, '#/agents', 'h1:has-text("Agents")', 'agents-empty', false);
    const agent = spawn(process.env.MESH_PYTHON, [process.env.MESH_AGENT, URL.replace('http', 'ws') + '/ws', KEY], { stdio: 'inherit' });
    children.push(agent);
    const agentShown = appearsAt(page, 'td a[href^="#/agents/"]');
    const connected = await until('the agent registers', async () => {
      const listed = await api('/api/v1/agents');
      return listed.items.find((a) => a.name === 'py-agent' && a.status === 'active') && Date.now();
    });
    results.latency_ms.agent_appears = (await agentShown) - connected;
    await page.waitForSelector('td a:has-text("py-agent")');

    step('a task submitted over REST shows up and completes');
    await visit(page, '#/tasks', 'h1:has-text("Tasks")', 'tasks-before', false);
    const anyRow = appearsAt(page, 'td a[href^="#/tasks/"]');
    const done = appearsAt(page, 'td .badge.s-completed');
    const submittedAt = Date.now();
    const task = await api('/api/v1/tasks', { kind: 'py.echo', input: { hello: 'dashboard' } });
    const row = `tr:has(a[aria-label="Task ${task.id}"])`;
    await page.waitForSelector(`${row} .badge:has-text("completed")`);
    results.latency_ms.task_appears = (await anyRow) - submittedAt;
    results.latency_ms.task_completes_on_screen = (await done) - submittedAt;
    await shoot(page, 'tasks');
    await audit(page, 'tasks');
    await page.click(`a[aria-label="Task ${task.id}"]`);
    await page.waitForSelector('h1:has-text("Task")');
    await page.waitForSelector('.timeline li:has-text("completed")');
    await page.waitForSelector('pre:has-text("dashboard")');
    await shoot(page, 'task');
    await audit(page, 'task');
    const agents = await api('/api/v1/agents');
    const py = agents.items.find((a) => a.name === 'py-agent');
    await visit(page, `#/agents/${py.id}`, 'h2:has-text("Recent tasks")', 'agent');
    await visit(page, '#/agents', 'td a:has-text("py-agent")', 'agents');

    step('the event stream reconnects without losing events');
    await visit(page, '#/tasks', 'h1:has-text("Tasks")', 'tasks-live', false);
    await page.evaluate(() => window.meshFeed.drop());
    const burst = [];
    for (let i = 0; i < 3; i++) burst.push(await api('/api/v1/tasks', { kind: 'py.echo', input: { n: i } }));
    for (const t of burst) await page.waitForSelector(`tr:has(a[aria-label="Task ${t.id}"]) .badge:has-text("completed")`);
    const seen = await page.evaluate(() => window.meshFeed.seen.map((id) => Number(id.split('-')[1])));
    for (let i = 1; i < seen.length; i++) {
      if (seen[i] !== seen[i - 1] + 1) throw new Error(`the feed skipped from ${seen[i - 1]} to ${seen[i]}: ${seen}`);
    }
    results.feed_events_seen = seen.length;

    step('a workflow started from the UI runs to an interrupt, is resumed from the UI and completes');
    await api('/api/v1/workflow-definitions', {
      name: 'approval',
      description: 'Echo a topic through the Python agent, then ask a person.',
      input_schema: { type: 'object', properties: { topic: { type: 'string', description: 'what to echo' } }, required: ['topic'] },
      state: { topic: {}, echo: {}, approval: {} },
      steps: [
        { name: 'echo', task: { kind: 'py.echo' }, input: { topic: { $state: '/topic' } }, output: 'echo', next: 'approve' },
        { name: 'approve', wait: { interrupt: { prompt: 'Publish it?' } }, output: 'approval',
          output_schema: { type: 'object', properties: { approved: { type: 'boolean' } }, required: ['approved'] } },
      ],
    });
    await visit(page, '#/workflows', 'h1:has-text("Workflows")', 'workflows-empty', false);
    await page.click('#start-link');
    await page.waitForSelector('#start-workflow');
    await page.selectOption('#start-workflow', 'approval');
    await page.waitForSelector('#input-topic');
    await page.fill('#input-topic', 'bees');
    await shoot(page, 'start');
    await audit(page, 'start');
    await page.click('button:has-text("Start")');
    await page.waitForSelector('h2:has-text("Waiting at approve")');
    await page.waitForSelector('.node[data-step="echo"][data-state="done"]');
    await page.waitForSelector('.node[data-step="approve"][data-state="waiting"]');
    await shoot(page, 'run-waiting');
    await audit(page, 'run-waiting');
    const runId = await page.evaluate(() => location.hash.split('/')[2]);
    await page.check('input[name="approved"]');
    await page.click('button:has-text("Resume")');
    await page.waitForSelector('h1 .badge:has-text("succeeded")');
    await page.waitForSelector('.node[data-step="approve"][data-state="done"]');
    const finished = await api(`/api/v1/workflows/${runId}`);
    if (finished.status !== 'succeeded' || finished.output.approval.approved !== true) throw new Error(`run: ${JSON.stringify(finished)}`);
    await page.click('button[aria-label="State at checkpoint 1"]');
    await page.waitForSelector('#checkpoint-state:has-text("bees")');
    await shoot(page, 'run');
    await audit(page, 'run');

    step('a failing step shows in the failed-only view');
    await api('/api/v1/workflow-definitions', {
      name: 'broken', state: { text: {} },
      steps: [{ name: 'read', tool: { name: 'files', action: 'read' }, input: { path: 'missing.txt' }, output: 'text' }],
    });
    const broken = await api('/api/v1/workflows', { workflow: 'broken' });
    await until('the broken run fails', async () => (await api(`/api/v1/workflows/${broken.id}`)).status === 'failed');
    await visit(page, `#/workflows/${broken.id}`, '.node[data-step="read"][data-state="failed"]', 'run-failed');
    await page.check('#failed-only');
    await page.waitForSelector('#history li[data-event="started"]', { state: 'detached' });
    const shown = await page.$$eval('#history li', (items) => items.map((li) => li.dataset.event));
    if (shown.length !== 1 || shown[0] !== 'step_failed') throw new Error(`failed-only shows ${shown}`);
    await page.click('button:has-text("Retry")');
    await page.waitForSelector('#history li[data-event="step_failed"]');

    step('batch cancel from the runs list');
    await api('/api/v1/workflow-definitions', {
      name: 'hold', state: { go: {} }, steps: [{ name: 'go', wait: { signal: { name: 'go' } }, output: 'go' }],
    });
    const held = [await api('/api/v1/workflows', { workflow: 'hold' }), await api('/api/v1/workflows', { workflow: 'hold' })];
    await visit(page, '#/workflows?workflow=hold', `input[aria-label="Select run ${held[1].id}"]`, 'workflows');
    for (const run of held) await page.check(`input[aria-label="Select run ${run.id}"]`);
    await page.click('#cancel-selected');
    for (const run of held) await page.waitForSelector(`tr:has(a[aria-label="Run ${run.id}"]) .badge:has-text("cancelled")`);
    for (const run of held) {
      const status = (await api(`/api/v1/workflows/${run.id}`)).status;
      if (status !== 'cancelled') throw new Error(`run ${run.id} is ${status}`);
    }

    step('tools and knowledge');
    await visit(page, '#/tools', 'h2:has-text("files")', 'tools');
    await page.fill('#files-write-path', 'from-the-dashboard.txt');
    await page.fill('#files-write-text', 'hello');
    await page.click('button:has-text("Run write")');
    await page.waitForSelector('pre:has-text("from-the-dashboard.txt")');
    await visit(page, '#/knowledge', 'h2:has-text("Index a document")', 'knowledge-empty', false);
    await page.fill('#doc-id', 'dash');
    await page.fill('#doc-text', 'The dashboard reads everything through the REST API.');
    await page.click('button:has-text("Index")');
    await page.waitForSelector('text=Queued dash');
    await page.fill('#search-query', 'dashboard REST');
    await until('the document is found', async () => {
      await page.click('button:has-text("Search")');
      return page.$('td:has-text("dash")');
    });
    await shoot(page, 'knowledge');
    await audit(page, 'knowledge');

    step('shared documents: typed in the browser, edited by an agent and over REST, shown live');
    await visit(page, '#/docs', 'h1:has-text("Shared documents")', 'docs-empty', false);
    await page.fill('#doc-name', 'release notes');
    await page.selectOption('#doc-kind', 'text');
    await page.click('button:has-text("Create")');
    await page.waitForSelector('#doc-live:has-text("live")');
    const notes = await page.evaluate(() => location.hash.split('/')[2]);
    await page.click('#doc-text-body');
    await page.keyboard.type('Typed in the browser.\n');
    await until('the typing is stored', async () => (await api(`/api/v1/shared-docs/${notes}`)).content === 'Typed in the browser.\n');
    const note = await api('/api/v1/tasks', { kind: 'py.note', input: { doc: notes, line: 'Appended by the Python agent.' } });
    await until('the agent appends', async () => (await api(`/api/v1/tasks/${note.id}`)).status === 'completed');
    await api(`/api/v1/shared-docs/${notes}/edits`, { edits: [{ op: 'splice', pos: 0, insert: '# Notes\n' }] });
    const want = '# Notes\nTyped in the browser.\nAppended by the Python agent.\n';
    await page.waitForFunction((w) => document.querySelector('#doc-text-body').value === w, want);
    await page.waitForSelector('#doc-saved:has-text("Saved")');
    await shoot(page, 'doc-text');
    await audit(page, 'doc-text');
    const board = await api('/api/v1/shared-docs', { name: 'board', kind: 'state' });
    await visit(page, `#/docs/${board.id}`, '#doc-live:has-text("live")', 'doc-state-empty', false);
    await page.fill('#state-path', 'build/status');
    await page.selectOption('#state-op', 'set');
    await page.fill('#state-value', '"green"');
    await page.click('button:has-text("Apply")');
    await until('the path is set', async () => (await api(`/api/v1/shared-docs/${board.id}`)).content['build/status'] === 'green');
    await api(`/api/v1/shared-docs/${board.id}/edits`, { edits: [{ op: 'add', path: 'runs', delta: 2 }, { op: 'insert', path: 'owners', element: 'ada' }] });
    await page.waitForSelector('tr:has(code:has-text("runs")) td:has-text("2")');
    await page.waitForSelector('tr:has(code:has-text("owners")) td:has-text("ada")');
    await shoot(page, 'doc-state');
    await audit(page, 'doc-state');
    await visit(page, '#/docs', 'td a:has-text("board")', 'docs');

    step('overview, after a burst of work');
    const burstIds = await Promise.all(Array.from({ length: 40 }, (_, n) => api('/api/v1/tasks', { kind: 'py.echo', input: { n } })));
    await until('the burst ends', async () => (await api(`/api/v1/tasks/${burstIds[39].id}`)).status === 'completed');
    await visit(page, '#/overview', 'td:has-text("embedder")', 'overview');

    step('sign out');
    await page.click('#signout');
    await page.waitForSelector('#credential');
    if (errors.length) throw new Error(`errors in the page: ${errors.join('; ')}`);
  } catch (e) {
    if (SHOTS && current) {
      mkdirSync(SHOTS, { recursive: true });
      await current.screenshot({ path: join(SHOTS, 'failure.png'), fullPage: true }).catch(() => {});
      results.failure_html = await current.$eval('main', (m) => m.outerHTML).catch(() => '');
    }
    throw e;
  } finally {
    for (const child of children) child.kill('SIGKILL');
    await browser.close();
  }
}

main().then(() => {
  if (RESULTS) writeFileSync(RESULTS, JSON.stringify(results, null, 2));
  console.log(JSON.stringify({ ok: true, latency_ms: results.latency_ms, transfer_bytes: results.transfer_bytes }));
}, (e) => {
  if (RESULTS) writeFileSync(RESULTS, JSON.stringify({ ...results, error: String(e.stack || e) }, null, 2));
  console.error(e);
  for (const child of children) child.kill('SIGKILL');
  process.exit(1);
});
