// The Mesh dashboard: plain DOM, no framework, no build step. Every figure comes from
// the REST API with the signed-in credential; the live event feed (/api/v1/events,
// Server-Sent Events read with fetch so the credential travels in a header) keeps the
// page current and resumes with Last-Event-ID after a dropped connection.

const CREDENTIAL = 'mesh.credential';
let credential = sessionStorage.getItem(CREDENTIAL);
let feed = null;
let page = { onEvent: null, stop: [] };
const recent = []; // the feed's events since sign-in, for timelines (newest last)
const main = document.getElementById('main');

// ---------------------------------------------------------------- small helpers

function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : String(kid));
  }
  return el;
}

// Replaces `el`'s children with `kids` (lists flattened, nothing for null or false).
function put(el, ...kids) {
  el.replaceChildren(...kids.flat(Infinity).filter((k) => k !== null && k !== undefined && k !== false)
    .map((k) => (k instanceof Node ? k : String(k))));
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const short = (id) => (id ? String(id).slice(-12) : '-');
const json = (v) => JSON.stringify(v, null, 2);

function when(at) {
  if (!at) return '-';
  const d = new Date(at);
  if (Number.isNaN(d.getTime())) return String(at);
  return d.toISOString().replace('T', ' ').slice(0, 19);
}

function badge(status) {
  const s = String(status ?? '-');
  return h('span', { class: `badge s-${s}` }, s.replace('_', ' '));
}

function text(v) {
  if (v === null || v === undefined) return '-';
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(`${code}: ${message}`);
    this.status = status;
    this.code = code;
  }
}

async function api(path, { method = 'GET', body } = {}) {
  const headers = { authorization: `Bearer ${credential}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const raw = await res.text();
  let data = null;
  try {
    data = raw ? JSON.parse(raw) : null;
  } catch {
    data = raw;
  }
  if (res.status === 401) {
    signOut('Your credential was refused; sign in again.');
    throw new ApiError(401, 'unauthorized', 'credential refused');
  }
  if (!res.ok) {
    throw new ApiError(res.status, data?.code ?? 'error', data?.message ?? String(raw));
  }
  return data;
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? `?${s}` : '';
}

// A call whose failure — refused by the server, or input that is not JSON — is shown
// next to the control that made it.
async function attempt(out, fn) {
  out.textContent = '';
  try {
    return await fn();
  } catch (e) {
    if (e.status !== 401) out.textContent = e.message;
    return undefined;
  }
}

function table(caption, columns, rows, empty = 'None yet.') {
  if (!rows.length) return h('p', { class: 'muted' }, empty);
  return h('div', { class: 'table-wrap' },
    h('table', {},
      h('caption', { class: 'skip' }, caption),
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.narrow ? 'hide-narrow' : null }, c.title)))),
      h('tbody', {}, rows.map((row) => h('tr', {}, columns.map((c) => h('td', { class: [c.narrow ? 'hide-narrow' : '', c.wrap ? 'wrap' : ''].join(' ').trim() || null }, c.cell(row))))))));
}

// Re-runs `fn` at most once per `ms`, however often it is asked.
function debounce(fn, ms) {
  let timer = null;
  return () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = null;
      fn();
    }, ms);
  };
}

// Makes `onEvent` the page's handler of feed events, and runs `again` every `ms` —
// unless the visitor has moved on while the page was loading.
function follow(root, onEvent, ms, again) {
  if (!root.isConnected) return;
  page.onEvent = onEvent;
  if (ms) {
    const id = setInterval(again, ms);
    page.stop.push(() => clearInterval(id));
  }
}

// A small line chart of `values` (nulls are gaps), labelled for screen readers.
function sparkline(values, label, color = 'currentColor') {
  const w = 240;
  const hgt = 44;
  const numbers = values.filter((v) => v !== null && v !== undefined);
  const max = Math.max(1, ...numbers);
  const step = values.length > 1 ? w / (values.length - 1) : w;
  let d = '';
  values.forEach((v, i) => {
    if (v === null || v === undefined) return;
    const x = (i * step).toFixed(1);
    const y = (hgt - 2 - (v / max) * (hgt - 6)).toFixed(1);
    d += `${d && values[i - 1] !== null && values[i - 1] !== undefined ? 'L' : 'M'}${x},${y} `;
  });
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${hgt}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('role', 'img');
  svg.setAttribute('aria-label', label);
  const path = document.createElementNS('http://www.w3.org/2000/svg', 'path');
  path.setAttribute('d', d.trim() || `M0,${hgt - 2} L${w},${hgt - 2}`);
  path.setAttribute('fill', 'none');
  path.setAttribute('stroke', color);
  path.setAttribute('stroke-width', '2');
  svg.append(path);
  return svg;
}

// A form for a JSON Schema object: one labelled field per property (strings, numbers,
// booleans, enums); anything else, or no schema, is a JSON text area.
function schemaForm(schema, prefix, initial = {}) {
  const props = schema && schema.type === 'object' && schema.properties ? schema.properties : null;
  if (!props) {
    const area = h('textarea', { id: `${prefix}-json`, name: 'json', rows: 5 }, json(initial));
    return {
      node: h('label', { for: `${prefix}-json` }, 'Value (JSON)', area),
      value: () => JSON.parse(area.value || 'null'),
    };
  }
  const required = new Set(schema.required || []);
  const fields = Object.entries(props).map(([name, p]) => {
    const id = `${prefix}-${name}`;
    const title = `${name}${required.has(name) ? ' (required)' : ''}${p.description ? ` — ${p.description}` : ''}`;
    let input;
    let read;
    if (Array.isArray(p.enum)) {
      input = h('select', { id, name }, p.enum.map((v) => h('option', { value: JSON.stringify(v) }, String(v))));
      read = () => JSON.parse(input.value);
    } else if (p.type === 'boolean') {
      input = h('input', { id, name, type: 'checkbox', checked: initial[name] === true });
      read = () => input.checked;
    } else if (p.type === 'number' || p.type === 'integer') {
      input = h('input', { id, name, type: 'number', step: p.type === 'integer' ? '1' : 'any', required: required.has(name), value: initial[name] ?? '' });
      read = () => (input.value === '' ? undefined : Number(input.value));
    } else if (p.type === 'string') {
      input = h('input', { id, name, type: 'text', required: required.has(name), value: initial[name] ?? '' });
      read = () => (input.value === '' && !required.has(name) ? undefined : input.value);
    } else if (p.type === undefined) {
      // Any value: JSON when it reads as JSON, else the text as a string.
      input = h('textarea', { id, name, rows: 3 }, initial[name] === undefined ? '' : json(initial[name]));
      read = () => {
        if (input.value.trim() === '') return undefined;
        try {
          return JSON.parse(input.value);
        } catch {
          return input.value;
        }
      };
    } else {
      input = h('textarea', { id, name, rows: 3 }, initial[name] === undefined ? '' : json(initial[name]));
      read = () => (input.value.trim() === '' ? undefined : JSON.parse(input.value));
    }
    return { name, node: h('label', { for: id }, title, input), read };
  });
  return {
    node: h('div', { class: 'row' }, fields.map((f) => f.node)),
    value: () => {
      const out = {};
      for (const f of fields) {
        const v = f.read();
        if (v !== undefined) out[f.name] = v;
      }
      return out;
    },
  };
}

// ---------------------------------------------------------------- the live feed

// Reads a Server-Sent Events response to its end, calling `onMessage` with each
// message's id, event name and data (parsed as JSON; null when it is not).
async function readEvents(res, onMessage) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      onMessage(parseEvent(buffer.slice(0, end)));
      buffer = buffer.slice(end + 2);
    }
  }
}

function parseEvent(block) {
  let id = null;
  let event = 'message';
  let data = '';
  for (const line of block.split('\n')) {
    if (!line || line.startsWith(':')) continue;
    const at = line.indexOf(':');
    const field = at < 0 ? line : line.slice(0, at);
    const value = at < 0 ? '' : line.slice(at + 1).replace(/^ /, '');
    if (field === 'id') id = value;
    else if (field === 'event') event = value;
    else if (field === 'data') data += value;
  }
  let parsed = null;
  try {
    parsed = data ? JSON.parse(data) : null;
  } catch {
    parsed = null;
  }
  return { id, event, data: parsed };
}

class Feed {
  constructor() {
    this.last = null;
    this.seen = [];
    this.stopped = false;
    this.controller = null;
    this.run();
  }

  async run() {
    let backoff = 250;
    while (!this.stopped) {
      try {
        this.controller = new AbortController();
        const headers = { authorization: `Bearer ${credential}`, accept: 'text/event-stream' };
        if (this.last) headers['last-event-id'] = this.last;
        const res = await fetch('/api/v1/events', { headers, signal: this.controller.signal });
        if (res.status === 401) {
          signOut('Your credential was refused; sign in again.');
          return;
        }
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        setLive(true);
        backoff = 250;
        await readEvents(res, (message) => this.dispatch(message));
      } catch {
        // dropped: reconnect below
      }
      if (this.stopped) return;
      setLive(false);
      await sleep(backoff);
      backoff = Math.min(backoff * 2, 5000);
    }
  }

  dispatch({ id, event, data }) {
    if (id) {
      this.last = id;
      this.seen.push(id);
    }
    const payload = data ?? {};
    if (event !== 'reset') {
      recent.push({ at: new Date().toISOString(), event, ...payload });
      if (recent.length > 2000) recent.shift();
    }
    if (page.onEvent) page.onEvent(event, payload);
  }

  // Drops the connection as a network failure would (the feed reconnects and
  // resumes): for tests and for the reconnect button.
  drop() {
    if (this.controller) this.controller.abort();
  }

  stop() {
    this.stopped = true;
    this.drop();
  }
}

function setLive(up) {
  const el = document.getElementById('live');
  el.textContent = up ? '● live' : '○ reconnecting…';
  el.classList.toggle('down', !up);
}

// ---------------------------------------------------------------- sign-in, routing

function signOut(message) {
  sessionStorage.removeItem(CREDENTIAL);
  credential = null;
  if (feed) feed.stop();
  feed = null;
  window.meshFeed = null;
  signIn(message);
}

function signIn(message) {
  leave();
  document.getElementById('nav').hidden = true;
  document.getElementById('signout').hidden = true;
  document.getElementById('live').textContent = '';
  const input = h('input', { id: 'credential', name: 'credential', type: 'password', autocomplete: 'off', required: true });
  const error = h('p', { class: 'error', role: 'alert', id: 'signin-error' }, message || '');
  const form = h('form', {
    class: 'panel signin',
    'aria-labelledby': 'signin-title',
    onsubmit: async (e) => {
      e.preventDefault();
      error.textContent = '';
      const candidate = input.value.trim();
      const res = await fetch('/api/v1/overview', { headers: { authorization: `Bearer ${candidate}` } });
      if (!res.ok) {
        const body = await res.json().catch(() => ({}));
        error.textContent = `Refused: ${body.message || res.status}`;
        input.focus();
        return;
      }
      credential = candidate;
      sessionStorage.setItem(CREDENTIAL, credential);
      start();
    },
  },
  h('h1', { id: 'signin-title' }, 'Sign in to Mesh'),
  h('p', { class: 'muted' }, 'With an API key or a JWT. It stays in this tab only.'),
  h('label', { for: 'credential' }, 'API key or JWT', input),
  h('button', { type: 'submit' }, 'Sign in'),
  error);
  put(main, form);
  input.focus();
}

function start() {
  document.getElementById('nav').hidden = false;
  document.getElementById('signout').hidden = false;
  feed = new Feed();
  window.meshFeed = feed;
  if (!location.hash || location.hash === '#') location.hash = '#/overview';
  else route();
}

function leave() {
  for (const stop of page.stop) stop();
  page = { onEvent: null, stop: [] };
}

const routes = [
  [/^#\/overview$/, overviewPage],
  [/^#\/agents$/, agentsPage],
  [/^#\/agents\/([^/?]+)$/, agentPage],
  [/^#\/tasks$/, tasksPage],
  [/^#\/tasks\/([^/?]+)$/, taskPage],
  [/^#\/workflows$/, workflowsPage],
  [/^#\/workflows\/start$/, startPage],
  [/^#\/workflows\/([^/?]+)$/, runPage],
  [/^#\/tools$/, toolsPage],
  [/^#\/knowledge$/, knowledgePage],
  [/^#\/docs$/, docsPage],
  [/^#\/docs\/([^/?]+)$/, docPage],
];

function route() {
  if (!credential) return signIn();
  leave();
  const [path, search] = (location.hash || '#/overview').split('?');
  const params = new URLSearchParams(search || '');
  for (const a of document.querySelectorAll('#nav a')) {
    const here = path === a.getAttribute('href') || path.startsWith(`${a.getAttribute('href')}/`);
    if (here) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  for (const [pattern, render] of routes) {
    const m = path.match(pattern);
    if (m) {
      // Each visit renders into a fresh element: a slow answer for the page before
      // lands in a detached one, never over this page.
      const root = h('div', {}, h('p', {}, 'Loading…'));
      put(main, root);
      render(root, params, ...m.slice(1).map(decodeURIComponent)).catch((e) => {
        if (e.status !== 401) put(root, h('h1', {}, 'Something went wrong'), h('p', { class: 'error', role: 'alert' }, e.message));
      });
      main.focus({ preventScroll: true });
      return;
    }
  }
  put(main, h('h1', {}, 'Not found'), h('p', {}, h('a', { href: '#/overview' }, 'Back to the overview')));
}

function setHash(path, params = {}) {
  location.hash = `${path}${query(params)}`;
}

// ---------------------------------------------------------------- overview

async function overviewPage(root) {
  const body = h('div', {});
  put(root, h('h1', {}, 'Overview'), body);
  const draw = async () => {
    const o = await api('/api/v1/overview');
    const series = o.series || [];
    const lastMinute = series.slice(-12);
    const done = lastMinute.reduce((n, b) => n + b.completed + b.failed, 0);
    const perSecond = (done / 60).toFixed(1);
    const latest = (key) => {
      for (let i = series.length - 1; i >= Math.max(0, series.length - 12); i--) if (series[i][key] !== null) return series[i][key];
      return null;
    };
    const ms = (v) => (v === null ? '-' : `${v < 10 ? v.toFixed(1) : Math.round(v)} ms`);
    const count = (c) => `${c.count}${c.more ? '+' : ''}`;
    const online = o.agents.active || 0;
    const agentsTotal = Object.values(o.agents).reduce((a, b) => a + b, 0);
    const card = (label, value, chart) => h('div', { class: 'card' }, h('div', { class: 'label' }, label), h('div', { class: 'value' }, value), chart);
    const workflowRows = Object.entries(o.workflows).map(([status, c]) => ({ status, c }));
    put(body, 
      h('section', { 'aria-label': 'Live counters', class: 'grid' },
        card('Agents online', `${online} / ${agentsTotal}`),
        card('Tasks per second (1 min)', perSecond, sparkline(series.map((b) => (b.completed + b.failed) / 5), 'Tasks per second over the last 5 minutes', '#1c7c3b')),
        card('Queue depth', count(o.tasks.pending)),
        card('In flight', count(o.tasks.in_flight)),
        card('Latency p50', ms(latest('p50_ms')), sparkline(series.map((b) => b.p50_ms), 'Median task latency over the last 5 minutes', '#1f5fbf')),
        card('Latency p99', ms(latest('p99_ms')), sparkline(series.map((b) => b.p99_ms), '99th percentile task latency over the last 5 minutes', '#b3261e'))),
      h('h2', {}, 'Health'),
      table('Component health', [
        { title: 'Component', cell: (c) => c.name },
        { title: 'Status', cell: (c) => badge(c.ok ? 'ok' : 'bad') },
        { title: 'Detail', cell: (c) => c.detail, wrap: true },
        { title: 'Took', cell: (c) => `${c.millis.toFixed(1)} ms`, narrow: true },
      ], o.health),
      h('h2', {}, 'Workflow runs'),
      table('Workflow runs by status', [
        { title: 'Status', cell: (r) => h('a', { href: `#/workflows?status=${r.status}` }, badge(r.status)) },
        { title: 'Runs', cell: (r) => count(r.c) },
      ], workflowRows),
      h('p', { class: 'muted' }, `Tasks ended in the last minute: ${done}. Agents by status: ${Object.entries(o.agents).map(([s, n]) => `${s} ${n}`).join(', ') || 'none'}.`));
  };
  await draw();
  const again = debounce(() => draw().catch(() => {}), 500);
  follow(root, again, 3000, again);
}

// ---------------------------------------------------------------- agents

async function agentsPage(root) {
  const body = h('div', {});
  put(root, h('h1', {}, 'Agents'), body);
  const draw = async () => {
    const listed = await api('/api/v1/agents?limit=200');
    const agents = listed.items;
    const stats = await Promise.all(agents.slice(0, 50).map(async (a) => {
      const t = await api(`/api/v1/tasks${query({ agent: a.id, order: 'newest', limit: 100 })}`);
      const items = t.items;
      const ended = items.filter((x) => ['completed', 'failed', 'timed_out'].includes(x.status));
      const ok = ended.filter((x) => x.status === 'completed').length;
      const load = items.filter((x) => ['assigned', 'accepted', 'in_progress'].includes(x.status)).length;
      return { load, rate: ended.length ? `${Math.round((100 * ok) / ended.length)}%` : '-' };
    }));
    put(body, table('Agents', [
      { title: 'Name', cell: (a) => h('a', { href: `#/agents/${a.id}` }, a.name) },
      { title: 'Status', cell: (a) => badge(a.status) },
      { title: 'Capabilities', cell: (a) => a.capabilities.join(', '), wrap: true },
      { title: 'Labels', cell: (a) => Object.entries(a.labels || {}).map(([k, v]) => `${k}=${v}`).join(', ') || '-', narrow: true },
      { title: 'Load', cell: (a) => { const s = stats[agents.indexOf(a)]; return s ? `${s.load} / ${a.max_concurrency}` : '-'; } },
      { title: 'Cost/h', cell: (a) => (a.cost_per_hour ?? '-'), narrow: true },
      { title: 'Success', cell: (a) => stats[agents.indexOf(a)]?.rate ?? '-' },
      { title: 'Last seen', cell: (a) => when(a.last_seen_at), narrow: true },
    ], agents, 'No agents have connected yet.'));
  };
  await draw();
  const again = debounce(() => draw().catch(() => {}), 400);
  follow(root, (event) => {
    if (event.startsWith('agent_') || event === 'task_status' || event === 'reset') again();
  }, 10000, again);
}

async function agentPage(root, _params, id) {
  const draw = async () => {
    const a = await api(`/api/v1/agents/${encodeURIComponent(id)}`);
    const tasks = await api(`/api/v1/tasks${query({ agent: id, order: 'newest', limit: 20 })}`);
    put(root, 
      h('h1', {}, 'Agent ', a.name, ' ', badge(a.status)),
      h('div', { class: 'panel' }, h('dl', { class: 'grid' },
        [['Id', a.id], ['Capabilities', a.capabilities.join(', ')], ['Labels', text(a.labels)], ['Concurrency', a.max_concurrency],
          ['Cost per hour', a.cost_per_hour ?? '-'], ['Registered', when(a.created_at)], ['Last seen', when(a.last_seen_at)]]
          .map(([k, v]) => h('div', {}, h('dt', { class: 'muted' }, k), h('dd', {}, String(v)))))),
      h('h2', {}, 'Recent tasks'),
      taskTable(tasks.items, 'Recent tasks of this agent'));
  };
  await draw();
  const again = debounce(() => draw().catch(() => {}), 400);
  follow(root, (event, e) => {
    if ((e.agent === id) || event === 'task_status' || event === 'reset') again();
  });
}

// ---------------------------------------------------------------- tasks

function taskTable(items, caption) {
  return table(caption, [
    { title: 'Task', cell: (t) => h('a', { href: `#/tasks/${t.id}`, 'aria-label': `Task ${t.id}` }, short(t.id)) },
    { title: 'Kind', cell: (t) => t.kind },
    { title: 'Status', cell: (t) => badge(t.status) },
    { title: 'Attempts', cell: (t) => t.attempts, narrow: true },
    { title: 'Created', cell: (t) => when(t.created_at), narrow: true },
  ], items, 'No tasks.');
}

async function tasksPage(root, params) {
  const status = params.get('status') || '';
  const kind = params.get('kind') || '';
  const cursor = params.get('cursor') || '';
  const statusSelect = h('select', { id: 'task-status', name: 'status' },
    ['', 'pending', 'assigned', 'accepted', 'in_progress', 'completed', 'failed', 'cancelled', 'timed_out']
      .map((s) => h('option', { value: s, selected: s === status }, s || 'any')));
  const kindInput = h('input', { id: 'task-kind', name: 'kind', value: kind });
  const filters = h('form', {
    class: 'row',
    'aria-label': 'Filter tasks',
    onsubmit: (e) => {
      e.preventDefault();
      setHash('#/tasks', { status: statusSelect.value, kind: kindInput.value.trim() });
    },
  }, h('label', { for: 'task-status' }, 'Status', statusSelect), h('label', { for: 'task-kind' }, 'Kind', kindInput), h('button', { type: 'submit' }, 'Filter'));
  const body = h('div', {});
  put(root, h('h1', {}, 'Tasks'), filters, body);
  const draw = async () => {
    const listed = await api(`/api/v1/tasks${query({ status, kind, cursor, order: 'newest', limit: 25 })}`);
    put(body, 
      taskTable(listed.items, 'Tasks, newest first'),
      h('div', { class: 'pager' },
        cursor ? h('a', { href: `#/tasks${query({ status, kind })}` }, 'Newest') : null,
        listed.next ? h('a', { href: `#/tasks${query({ status, kind, cursor: listed.next })}` }, 'Older') : null));
  };
  await draw();
  const again = debounce(() => draw().catch(() => {}), 300);
  follow(root, (event) => {
    if (event.startsWith('task_') || event === 'reset') again();
  }, 5000, again);
}

async function taskPage(root, _params, id) {
  const draw = async () => {
    const t = await api(`/api/v1/tasks/${encodeURIComponent(id)}`);
    const steps = [{ at: t.created_at, what: 'submitted', status: 'pending' }];
    for (const e of recent) {
      if (e.task !== id) continue;
      if (e.event === 'task_assigned') steps.push({ at: e.at, what: `assigned to ${e.agent_name} (attempt ${e.attempt})`, status: 'assigned' });
      if (e.event === 'task_status') steps.push({ at: e.at, what: e.status.replace('_', ' '), status: e.status });
    }
    if (!steps.some((s) => s.status === t.status)) steps.push({ at: t.updated_at, what: t.status.replace('_', ' '), status: t.status });
    const cancel = h('button', {
      type: 'button',
      class: 'danger',
      disabled: ['completed', 'failed', 'cancelled', 'timed_out'].includes(t.status),
      onclick: async () => {
        await attempt(out, () => api(`/api/v1/tasks/${encodeURIComponent(id)}/cancel`, { method: 'POST', body: {} }));
        draw();
      },
    }, 'Cancel task');
    const out = h('p', { class: 'error', role: 'alert' });
    put(root, 
      h('h1', {}, 'Task ', short(t.id), ' ', badge(t.status)),
      h('div', { class: 'row' }, cancel, out),
      h('div', { class: 'panel' }, h('dl', { class: 'grid' },
        [['Id', t.id], ['Kind', t.kind], ['Priority', t.priority], ['Agent', t.agent_id ?? '-'], ['Attempts', `${t.attempts} of ${t.max_attempts}`],
          ['Progress', t.progress === null || t.progress === undefined ? '-' : `${Math.round(t.progress * 100)}%`], ['Error', t.error ?? '-']]
          .map(([k, v]) => h('div', {}, h('dt', { class: 'muted' }, k), h('dd', {}, String(v)))))),
      h('h2', {}, 'Timeline'),
      h('ol', { class: 'timeline' }, steps.map((s) => h('li', {}, h('span', { class: 'muted' }, when(s.at)), badge(s.status), s.what))),
      h('h2', {}, 'Input'), h('pre', {}, json(t.input)),
      h('h2', {}, 'Output'), h('pre', {}, json(t.output ?? null)));
  };
  await draw();
  const again = debounce(() => draw().catch(() => {}), 200);
  follow(root, (event, e) => {
    if (e.task === id || event === 'reset') again();
  });
}

// ---------------------------------------------------------------- workflows

async function workflowsPage(root, params) {
  const status = params.get('status') || '';
  const workflow = params.get('workflow') || '';
  const since = params.get('since') || '';
  const cursor = params.get('cursor') || '';
  const statusSelect = h('select', { id: 'run-status', name: 'status' },
    ['', 'running', 'waiting', 'succeeded', 'failed', 'cancelled'].map((s) => h('option', { value: s, selected: s === status }, s || 'any')));
  const defs = await api('/api/v1/workflow-definitions?limit=1000');
  const names = [...new Set(defs.items.map((d) => d.name))];
  const workflowSelect = h('select', { id: 'run-workflow', name: 'workflow' },
    h('option', { value: '' }, 'any'), names.map((n) => h('option', { value: n, selected: n === workflow }, n)));
  const sinceInput = h('input', { id: 'run-since', name: 'since', type: 'datetime-local', value: since ? since.slice(0, 16) : '' });
  const filters = h('form', {
    class: 'row',
    'aria-label': 'Filter runs',
    onsubmit: (e) => {
      e.preventDefault();
      const s = sinceInput.value ? new Date(sinceInput.value).toISOString() : '';
      setHash('#/workflows', { status: statusSelect.value, workflow: workflowSelect.value, since: s });
    },
  },
  h('label', { for: 'run-status' }, 'Status', statusSelect),
  h('label', { for: 'run-workflow' }, 'Workflow', workflowSelect),
  h('label', { for: 'run-since' }, 'Started since', sinceInput),
  h('button', { type: 'submit' }, 'Filter'));
  const selected = new Set();
  const out = h('p', { class: 'error', role: 'alert' });
  const cancelSelected = h('button', {
    type: 'button',
    class: 'danger',
    id: 'cancel-selected',
    disabled: true,
    onclick: async () => {
      for (const id of [...selected]) {
        await attempt(out, () => api(`/api/v1/workflows/${id}/cancel`, { method: 'POST', body: {} }));
      }
      selected.clear();
      draw();
    },
  }, 'Cancel selected');
  const body = h('div', {});
  put(root, 
    h('h1', {}, 'Workflows'),
    h('div', { class: 'row' }, h('a', { href: '#/workflows/start', id: 'start-link' }, 'Start a workflow'), cancelSelected, out),
    filters, body);
  const draw = async () => {
    const listed = await api(`/api/v1/workflows${query({ status, workflow, since, cursor, limit: 25 })}`);
    const items = listed.items.slice().reverse();
    cancelSelected.disabled = selected.size === 0;
    put(body, 
      table('Workflow runs', [
        {
          title: 'Select',
          cell: (r) => h('input', {
            type: 'checkbox',
            'aria-label': `Select run ${r.id}`,
            checked: selected.has(r.id),
            disabled: !['running', 'waiting'].includes(r.status),
            onchange: (e) => {
              if (e.target.checked) selected.add(r.id);
              else selected.delete(r.id);
              cancelSelected.disabled = selected.size === 0;
            },
          }),
        },
        { title: 'Run', cell: (r) => h('a', { href: `#/workflows/${r.id}`, 'aria-label': `Run ${r.id}` }, short(r.id)) },
        { title: 'Workflow', cell: (r) => `${r.workflow} v${r.version}` },
        { title: 'Status', cell: (r) => badge(r.status) },
        { title: 'Finished', cell: (r) => when(r.finished_at), narrow: true },
        { title: 'Error', cell: (r) => r.error ?? '-', wrap: true, narrow: true },
      ], items, 'No runs match.'),
      listed.next ? h('div', { class: 'pager' }, h('a', { href: `#/workflows${query({ status, workflow, since, cursor: listed.next })}` }, 'More')) : null);
  };
  await draw();
  const again = debounce(() => draw().catch(() => {}), 300);
  follow(root, (event) => {
    if (event === 'workflow_update' || event === 'reset') again();
  }, 5000, again);
}

async function startPage(root) {
  const defs = await api('/api/v1/workflow-definitions?limit=1000');
  const names = [...new Set(defs.items.map((d) => d.name))];
  const out = h('p', { class: 'error', role: 'alert' });
  const slot = h('div', {});
  const select = h('select', { id: 'start-workflow', name: 'workflow' }, h('option', { value: '' }, 'choose…'), names.map((n) => h('option', { value: n }, n)));
  let form = null;
  const pick = async () => {
    put(slot, );
    form = null;
    if (!select.value) return;
    const d = await api(`/api/v1/workflow-definitions/${encodeURIComponent(select.value)}`);
    form = schemaForm(d.definition.input_schema, 'input');
    put(slot, 
      h('p', { class: 'muted' }, d.definition.description || `Version ${d.version}`),
      h('fieldset', {}, h('legend', {}, 'Input'), form.node));
  };
  select.addEventListener('change', () => attempt(out, pick));
  put(root, 
    h('h1', {}, 'Start a workflow'),
    h('form', {
      class: 'panel',
      'aria-label': 'Start a workflow',
      onsubmit: async (e) => {
        e.preventDefault();
        if (!form) {
          out.textContent = 'Choose a workflow first.';
          return;
        }
        const run = await attempt(out, () => api('/api/v1/workflows', { method: 'POST', body: { workflow: select.value, input: form.value() } }));
        if (run) setHash(`#/workflows/${run.id}`);
      },
    }, h('label', { for: 'start-workflow' }, 'Workflow', select), slot, h('div', {}, h('button', { type: 'submit' }, 'Start')), out));
}

// Each step's state in a run: done, failed, running, waiting, or pending.
function stepStates(run, history) {
  const states = {};
  for (const entry of history) {
    const ev = entry.event;
    if (ev.type === 'step_completed') states[ev.step] = 'done';
    if (ev.type === 'step_failed') states[ev.step] = 'failed';
    if (ev.type === 'retried' || ev.type === 'started') {
      for (const k of Object.keys(states)) if (states[k] === 'failed') delete states[k];
    }
  }
  const last = history[history.length - 1];
  const walk = (frame) => {
    const at = frame?.at;
    if (!at) return;
    if (at.at === 'running' && states[at.step] !== 'done') states[at.step] = 'running';
    if (at.at === 'fanned') {
      states[at.step] = run.status === 'failed' ? states[at.step] ?? 'failed' : 'running';
      for (const f of at.frames) walk(f);
    }
  };
  if (last && !['succeeded', 'cancelled'].includes(run.status)) walk(last.position?.root);
  for (const i of run.interrupts || []) states[i.step] = 'waiting';
  if (run.status === 'failed') {
    for (const entry of history) if (entry.event.type === 'step_failed') states[entry.event.step] = 'failed';
  }
  return states;
}

function stepKind(step) {
  for (const k of ['task', 'tool', 'collab', 'workflow', 'wait', 'parallel', 'map']) {
    if (step[k] !== undefined) {
      if (k === 'task') return `task · ${step.task.kind}`;
      if (k === 'tool') return `tool · ${step.tool.name}.${step.tool.action}`;
      if (k === 'wait') return `wait · ${Object.keys(step.wait)[0]}`;
      if (k === 'workflow') return `workflow · ${step.workflow.name}`;
      if (k === 'collab') return `collab · ${step.collab.pattern}`;
      return k;
    }
  }
  return 'step';
}

// The definition as a graph: steps top to bottom, branches side by side, each step
// coloured by its state in the run.
function graph(steps, states) {
  return h('div', { class: 'steps' }, steps.map((step, i) => {
    const state = states[step.name] || 'pending';
    const nested = step.parallel ? step.parallel.branches.map((b) => b.steps) : step.map ? [step.map.steps] : null;
    let next = step.next;
    if (Array.isArray(next)) next = next.map((e) => e.to + (e.when ? ' (if)' : '')).join(' | ');
    return h('div', {},
      h('div', { class: `node ${state}`, 'data-step': step.name, 'data-state': state },
        h('strong', {}, step.name), ' ', h('span', { class: 'badge' }, state), h('div', { class: 'kind' }, stepKind(step))),
      nested ? h('div', { class: 'branches' }, nested.map((s) => graph(s, states))) : null,
      i < steps.length - 1 || next ? h('div', { class: 'arrow', 'aria-hidden': 'true' }, `↓ ${next ?? ''}`) : null);
  }));
}

async function runPage(root, _params, id) {
  let failedOnly = false;
  let showState = null;
  const draw = async () => {
    const run = await api(`/api/v1/workflows/${encodeURIComponent(id)}`);
    const history = await api(`/api/v1/workflows/${encodeURIComponent(id)}/history?limit=1000`);
    const def = await api(`/api/v1/workflow-definitions/${encodeURIComponent(run.workflow)}?version=${run.version}`);
    const states = stepStates(run, history);
    const out = h('p', { class: 'error', role: 'alert', id: 'run-error' });
    const act = (label, path, body, cls) => h('button', {
      type: 'button',
      class: cls,
      onclick: async () => {
        const done = await attempt(out, () => api(`/api/v1/workflows/${encodeURIComponent(id)}/${path}`, { method: 'POST', body: body() }));
        if (done && path === 'fork') setHash(`#/workflows/${done.id}`);
        else draw();
      },
    }, label);
    const live = ['running', 'waiting'].includes(run.status);
    const actions = h('div', { class: 'row' },
      live ? act('Cancel run', 'cancel', () => ({}), 'danger') : null,
      run.status === 'failed' ? act('Retry', 'retry', () => ({})) : null,
      out);
    const interrupts = (run.interrupts || []).map((i) => {
      const step = findStep(def.definition.steps, i.step);
      const form = schemaForm(step?.output_schema, `resume-${i.id.slice(-6)}`);
      return h('form', {
        class: 'panel',
        'aria-label': `Resume ${i.step}`,
        onsubmit: async (e) => {
          e.preventDefault();
          const ok = await attempt(out, () => api(`/api/v1/workflows/${encodeURIComponent(id)}/resume`, { method: 'POST', body: { interrupt: i.id, value: form.value() } }));
          if (ok !== undefined) draw();
        },
      }, h('h2', {}, `Waiting at ${i.step}`), h('p', {}, text(i.prompt)), form.node, h('div', {}, h('button', { type: 'submit' }, 'Resume')));
    });
    const signalName = h('input', { id: 'signal-name', name: 'signal', required: true });
    const signalValue = h('textarea', { id: 'signal-value', name: 'value', rows: 2 }, 'null');
    const signal = live ? h('form', {
      class: 'panel',
      'aria-label': 'Send a signal',
      onsubmit: async (e) => {
        e.preventDefault();
        const ok = await attempt(out, () => api(`/api/v1/workflows/${encodeURIComponent(id)}/signal`, { method: 'POST', body: { name: signalName.value, value: JSON.parse(signalValue.value || 'null') } }));
        if (ok !== undefined) draw();
      },
    }, h('h2', {}, 'Signal'), h('div', { class: 'row' }, h('label', { for: 'signal-name' }, 'Name', signalName), h('label', { for: 'signal-value' }, 'Value (JSON)', signalValue)), h('div', {}, h('button', { type: 'submit' }, 'Send signal'))) : null;
    const forkSeq = h('select', { id: 'fork-seq', name: 'seq' }, history.map((e) => h('option', { value: e.seq }, `#${e.seq} ${e.event.type.replace('_', ' ')}${e.event.step ? ` ${e.event.step}` : ''}`)));
    const forkPatch = h('textarea', { id: 'fork-patch', name: 'patch', rows: 3 }, '{}');
    const fork = history.length ? h('form', {
      class: 'panel',
      'aria-label': 'Fork from a checkpoint',
      onsubmit: async (e) => {
        e.preventDefault();
        const made = await attempt(out, () => api(`/api/v1/workflows/${encodeURIComponent(id)}/fork`, { method: 'POST', body: { seq: Number(forkSeq.value), patch: JSON.parse(forkPatch.value || '{}') } }));
        if (made) setHash(`#/workflows/${made.id}`);
      },
    }, h('h2', {}, 'Fork'), h('div', { class: 'row' }, h('label', { for: 'fork-seq' }, 'From checkpoint', forkSeq), h('label', { for: 'fork-patch' }, 'State patch (JSON merge patch)', forkPatch)), h('div', {}, h('button', { type: 'submit' }, 'Fork'))) : null;
    const failedBox = h('input', { type: 'checkbox', id: 'failed-only', checked: failedOnly, onchange: (e) => { failedOnly = e.target.checked; draw(); } });
    const shown = history.filter((e) => !failedOnly || e.event.type === 'step_failed');
    const timeline = h('ol', { class: 'timeline', id: 'history' }, shown.map((e) => h('li', { 'data-event': e.event.type },
      h('span', { class: 'muted' }, `#${e.seq}`), h('span', { class: 'muted' }, when(e.at)),
      badge(e.event.type === 'step_failed' ? 'failed' : e.event.type === 'step_completed' ? 'done' : 'running'),
      `${e.event.type.replace('_', ' ')}${e.event.step ? ` ${e.event.step}` : ''}`,
      e.event.error ? h('span', { class: 'error' }, e.event.error) : null,
      h('button', { type: 'button', class: 'quiet', 'aria-label': `State at checkpoint ${e.seq}`, onclick: () => { showState = e.seq; draw(); } }, 'State'))));
    const picked = history.find((e) => e.seq === showState);
    put(root, 
      h('h1', {}, `Run ${short(run.id)} `, badge(run.status)),
      h('p', { class: 'muted' }, `${run.workflow} version ${run.version}`, run.forked_from ? ` · forked from ${short(run.forked_from.run)} at #${run.forked_from.seq}` : '', run.error ? ` · ${run.error}` : ''),
      actions,
      interrupts,
      h('h2', {}, 'Steps'),
      h('div', { class: 'legend', 'aria-hidden': 'true' }, ['done', 'running', 'waiting', 'failed', 'pending'].map((s) => h('span', { class: 'badge' }, s))),
      h('div', { class: 'graph', role: 'group', 'aria-label': 'The workflow graph' }, graph(def.definition.steps, states)),
      h('h2', {}, 'History'),
      h('label', { for: 'failed-only', class: 'row' }, failedBox, 'Failed steps only'),
      shown.length ? timeline : h('p', { class: 'muted' }, failedOnly ? 'No failed steps.' : 'No checkpoints yet.'),
      picked ? h('div', { class: 'panel' }, h('h2', {}, `State at checkpoint #${picked.seq}`), h('pre', { id: 'checkpoint-state' }, json(picked.position?.root?.state ?? {}))) : null,
      signal,
      fork,
      h('h2', {}, 'Input'), h('pre', {}, json(run.input)),
      h('h2', {}, 'Output'), h('pre', {}, json(run.output ?? null)));
  };
  await draw();
  const again = debounce(() => draw().catch(() => {}), 200);
  follow(root, (event, e) => {
    if (e.run === id || event === 'reset') again();
  }, 5000, again);
}

function findStep(steps, name) {
  for (const s of steps || []) {
    if (s.name === name) return s;
    const nested = s.parallel ? s.parallel.branches.flatMap((b) => b.steps) : s.map ? s.map.steps : [];
    const found = findStep(nested, name);
    if (found) return found;
  }
  return null;
}

// ---------------------------------------------------------------- tools, knowledge

async function toolsPage(root) {
  const tools = await api('/api/v1/tools');
  put(root, h('h1', {}, 'Tools'), tools.length ? '' : h('p', { class: 'muted' }, 'No tools are registered.'),
    tools.map((tool) => h('section', { class: 'panel', 'aria-label': `Tool ${tool.name}` },
      h('h2', {}, tool.name), tool.description ? h('p', { class: 'muted' }, tool.description) : null,
      tool.actions.map((action) => {
        const prefix = `${tool.name}-${action.name}`;
        const form = schemaForm(action.input_schema, prefix);
        const result = h('pre', { hidden: true, 'aria-live': 'polite' });
        const out = h('p', { class: 'error', role: 'alert' });
        return h('form', {
          'aria-label': `${tool.name} ${action.name}`,
          onsubmit: async (e) => {
            e.preventDefault();
            const answer = await attempt(out, () => api(`/api/v1/tools/${encodeURIComponent(tool.name)}/execute`, { method: 'POST', body: { action: action.name, input: form.value() } }));
            if (answer) {
              result.hidden = false;
              result.textContent = json(answer.output);
            }
          },
        }, h('h3', {}, action.name), action.description ? h('p', { class: 'muted' }, action.description) : null, form.node,
        h('div', {}, h('button', { type: 'submit' }, `Run ${action.name}`)), out, result);
      }))));
}

async function knowledgePage(root) {
  const out = h('p', { class: 'error', role: 'alert' });
  const done = h('p', { role: 'status' });
  const collection = h('input', { id: 'doc-collection', name: 'collection', required: true, value: 'notes' });
  const docId = h('input', { id: 'doc-id', name: 'document_id', required: true });
  const docText = h('textarea', { id: 'doc-text', name: 'text', required: true, rows: 5 });
  const index = h('form', {
    class: 'panel',
    'aria-label': 'Index a document',
    onsubmit: async (e) => {
      e.preventDefault();
      const ok = await attempt(out, () => api('/api/v1/documents', { method: 'POST', body: { collection: collection.value, document_id: docId.value, text: docText.value } }));
      if (ok) done.textContent = `Queued ${docId.value} for indexing (job ${ok.job_id}).`;
    },
  }, h('h2', {}, 'Index a document'), h('div', { class: 'row' }, h('label', { for: 'doc-collection' }, 'Collection', collection), h('label', { for: 'doc-id' }, 'Document id', docId)),
  h('label', { for: 'doc-text' }, 'Text', docText), h('div', {}, h('button', { type: 'submit' }, 'Index')), done);
  const searchIn = h('input', { id: 'search-collection', name: 'collection', required: true, value: 'notes' });
  const searchFor = h('input', { id: 'search-query', name: 'query', required: true });
  const hits = h('div', { 'aria-live': 'polite' });
  const search = h('form', {
    class: 'panel',
    'aria-label': 'Search',
    onsubmit: async (e) => {
      e.preventDefault();
      const found = await attempt(out, () => api('/api/v1/search', { method: 'POST', body: { collection: searchIn.value, query: searchFor.value, k: 10 } }));
      if (found) {
        put(hits, table('Search results', [
          { title: 'Score', cell: (x) => x.score.toFixed(3) },
          { title: 'Document', cell: (x) => x.document_id },
          { title: 'Chunk', cell: (x) => x.chunk, narrow: true },
          { title: 'Text', cell: (x) => x.text, wrap: true },
        ], found.hits, 'Nothing found.'));
      }
    },
  }, h('h2', {}, 'Search'), h('div', { class: 'row' }, h('label', { for: 'search-collection' }, 'Collection', searchIn), h('label', { for: 'search-query' }, 'Query', searchFor),
    h('button', { type: 'submit' }, 'Search')), hits);
  put(root, h('h1', {}, 'Knowledge'), out, index, search);
}

// ---------------------------------------------------------------- shared documents

async function docsPage(root) {
  const out = h('p', { class: 'error', role: 'alert' });
  const name = h('input', { id: 'doc-name', name: 'name', required: true, maxlength: 256 });
  const kind = h('select', { id: 'doc-kind', name: 'kind' },
    h('option', { value: 'text' }, 'Text'), h('option', { value: 'state' }, 'State (paths and values)'));
  const create = h('form', {
    class: 'panel',
    'aria-label': 'New shared document',
    onsubmit: async (e) => {
      e.preventDefault();
      const made = await attempt(out, () => api('/api/v1/shared-docs', { method: 'POST', body: { name: name.value.trim(), kind: kind.value } }));
      if (made) setHash(`#/docs/${made.id}`);
    },
  }, h('h2', {}, 'New shared document'),
  h('div', { class: 'row' }, h('label', { for: 'doc-name' }, 'Name', name), h('label', { for: 'doc-kind' }, 'Kind', kind),
    h('button', { type: 'submit' }, 'Create')));
  const listed = await api('/api/v1/shared-docs?limit=100');
  put(root, h('h1', {}, 'Shared documents'),
    h('p', { class: 'muted' }, 'Text and state that agents (over the hub) and people edit at the same time.'),
    out, create,
    table('Shared documents', [
      { title: 'Name', cell: (d) => h('a', { href: `#/docs/${d.id}` }, d.name) },
      { title: 'Kind', cell: (d) => d.kind },
      { title: 'Created', cell: (d) => when(d.created_at) },
      { title: 'Id', cell: (d) => h('code', {}, short(d.id)) },
    ], listed.items, 'No shared documents yet.'));
}

// One document, live: its changes arrive as Server-Sent Events; a text is edited in
// place (each change sent as a splice), a state through a form.
async function docPage(root, _params, id) {
  const first = await api(`/api/v1/shared-docs/${id}`);
  const out = h('p', { class: 'error', role: 'alert' });
  const status = h('span', { class: 'badge s-pending', id: 'doc-live', role: 'status' }, 'connecting');
  const remove = h('button', {
    type: 'button',
    class: 'danger',
    onclick: async () => {
      if (!window.confirm(`Delete ${first.name}?`)) return;
      if (await attempt(out, () => api(`/api/v1/shared-docs/${id}`, { method: 'DELETE' })) !== undefined) setHash('#/docs');
    },
  }, 'Delete');
  const editor = first.kind === 'text' ? textEditor(id, first.content, out) : stateEditor(id, first.content, out);
  put(root, h('h1', {}, first.name, ' ', h('span', { class: 'badge' }, first.kind)),
    h('div', { class: 'row' }, status, h('code', {}, first.id), remove), out, editor.node);
  const controller = new AbortController();
  page.stop.push(() => controller.abort());
  followDoc(id, controller.signal, (event, view) => {
    if (event === 'content') {
      put(status, 'live');
      status.className = 'badge s-active';
      editor.show(view.content);
    } else if (event === 'deleted') {
      put(status, 'deleted');
      status.className = 'badge s-failed';
      out.textContent = 'This document was deleted.';
    }
  }, () => {
    put(status, 'reconnecting');
    status.className = 'badge s-pending';
  });
}

// Follows a document's events until `signal` aborts, reconnecting after a drop.
async function followDoc(id, signal, onEvent, onDrop) {
  let backoff = 250;
  while (!signal.aborted) {
    try {
      const res = await fetch(`/api/v1/shared-docs/${id}/events`, {
        headers: { authorization: `Bearer ${credential}`, accept: 'text/event-stream' },
        signal,
      });
      if (res.status === 404) return onEvent('deleted', null);
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      backoff = 250;
      await readEvents(res, ({ event, data }) => onEvent(event, data));
    } catch {
      // dropped: reconnect below
    }
    if (signal.aborted) return;
    onDrop();
    await sleep(backoff);
    backoff = Math.min(backoff * 2, 5000);
  }
}

// The one change that turns `from` into `to`, in characters (code points, as the mesh
// counts them): {pos, delete, insert}; null when they are equal.
function splice(from, to) {
  const a = Array.from(from);
  const b = Array.from(to);
  let start = 0;
  while (start < a.length && start < b.length && a[start] === b[start]) start++;
  let end = 0;
  while (end < a.length - start && end < b.length - start && a[a.length - 1 - end] === b[b.length - 1 - end]) end++;
  if (start === a.length && start === b.length) return null;
  return { pos: start, delete: a.length - start - end, insert: b.slice(start, b.length - end).join('') };
}

// A text document in a textarea. What the person types is sent as it happens, one
// splice at a time against the text the mesh last confirmed; others' changes replace
// the text when nothing of the person's is on its way.
function textEditor(id, initial, out) {
  const area = h('textarea', { id: 'doc-text-body', rows: 16, spellcheck: 'false' });
  area.value = initial;
  const saved = h('span', { class: 'muted', role: 'status', id: 'doc-saved' }, 'Saved');
  let base = initial; // the text as the mesh last confirmed it
  let sending = false;
  let missed = false; // a change arrived while one of ours was on its way
  async function flush() {
    if (sending) return;
    sending = true;
    try {
      for (let change = splice(base, area.value); change; change = splice(base, area.value)) {
        const sent = area.value;
        put(saved, 'Saving…');
        const view = await attempt(out, () => api(`/api/v1/shared-docs/${id}/edits`, { method: 'POST', body: { edits: [{ op: 'splice', ...change }] } }));
        if (!view) {
          area.value = base;
          break;
        }
        base = view.content;
        if (area.value === sent) replace(base);
      }
      // Which came first, that change or ours, is unknown here: read the text again
      // (and again, should another change arrive while reading).
      while (missed) {
        missed = false;
        const view = await attempt(out, () => api(`/api/v1/shared-docs/${id}`));
        if (view && splice(base, area.value) === null) {
          base = view.content;
          replace(base);
        }
      }
      put(saved, 'Saved');
    } finally {
      sending = false;
    }
    if (splice(base, area.value)) flush();
  }
  // Shows `text`, keeping the caret next to the text it was next to.
  function replace(text) {
    const old = area.value;
    if (old === text) return;
    const caret = area.selectionStart;
    area.value = text;
    const at = text.slice(0, caret) === old.slice(0, caret) ? caret : Math.max(0, text.length - (old.length - caret));
    if (document.activeElement === area) area.setSelectionRange(at, at);
  }
  area.addEventListener('input', flush);
  return {
    node: h('div', { class: 'panel' }, h('label', { for: 'doc-text-body' }, 'Text', area), saved),
    show(content) {
      if (sending) {
        missed = true;
      } else if (area.value === base) {
        base = content;
        replace(content);
      }
    },
  };
}

// A state document as a table of its paths, with a form for one change.
function stateEditor(id, initial, out) {
  const rows = h('div', { 'aria-live': 'polite' });
  const path = h('input', { id: 'state-path', name: 'path', required: true, maxlength: 1024 });
  const op = h('select', { id: 'state-op', name: 'op' },
    h('option', { value: 'set' }, 'set a value'), h('option', { value: 'add' }, 'add to a counter'),
    h('option', { value: 'insert' }, 'add to a set'), h('option', { value: 'remove' }, 'remove from a set'));
  const value = h('input', { id: 'state-value', name: 'value' });
  let sending = false; // one of the person's changes is on its way
  let missed = false; // a change arrived meanwhile
  const form = h('form', {
    'aria-label': 'Change a path',
    onsubmit: async (e) => {
      e.preventDefault();
      const edit = { op: op.value, path: path.value.trim() };
      if (op.value === 'set') {
        try {
          edit.value = JSON.parse(value.value);
        } catch {
          edit.value = value.value;
        }
      } else if (op.value === 'add') {
        edit.delta = Number.parseInt(value.value, 10) || 0;
      } else {
        edit.element = value.value;
      }
      sending = true;
      missed = false;
      let view = await attempt(out, () => api(`/api/v1/shared-docs/${id}/edits`, { method: 'POST', body: { edits: [edit] } }));
      // A change that arrived meanwhile may be newer than this answer: read again
      // (and again, should another arrive while reading).
      while (view && missed) {
        missed = false;
        view = await attempt(out, () => api(`/api/v1/shared-docs/${id}`));
      }
      sending = false;
      if (view) show(view.content);
    },
  }, h('div', { class: 'row' }, h('label', { for: 'state-path' }, 'Path', path), h('label', { for: 'state-op' }, 'Change', op),
    h('label', { for: 'state-value' }, 'Value (JSON, a number, or text)', value), h('button', { type: 'submit' }, 'Apply')));
  function show(content) {
    const entries = Object.entries(content || {}).map(([p, v]) => ({ path: p, value: v }));
    put(rows, table('Paths', [
      { title: 'Path', cell: (r) => h('code', {}, r.path) },
      { title: 'Value', cell: (r) => text(r.value), wrap: true },
    ], entries, 'No paths yet.'));
  }
  show(initial);
  return {
    node: h('div', { class: 'panel' }, h('h2', {}, 'Change a path'), form, rows),
    show(content) {
      missed = sending;
      show(content);
    },
  };
}

// ---------------------------------------------------------------- start

document.getElementById('signout').addEventListener('click', () => signOut('Signed out.'));
window.addEventListener('hashchange', route);
if (credential) start();
else signIn();
