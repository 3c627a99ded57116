// Mailwarden admin UI: plain JavaScript over the REST API (/api/v1), no build step.
'use strict';

const TOKEN_KEY = 'mailwarden.adminToken';
const ACTIVITY_EVERY_MS = 3000;
const ENGINE_EVERY_MS = 10000;
const POLICY_EVERY_MS = 10000;

const $ = (id) => document.getElementById(id);
const state = {
  token: sessionStorage.getItem(TOKEN_KEY) || '',
  /** The policy document last loaded or saved: { version, updatedAt, policy }. */
  doc: null,
  tab: 'engine',
  timers: { activity: 0, engine: 0, policy: 0 },
};

// ---------------------------------------------------------------- API

class Unauthorized extends Error {}

async function api(method, path, { body, headers = {}, token = state.token } = {}) {
  const init = { method, headers: { accept: 'application/json', authorization: `Bearer ${token}`, ...headers } };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const res = await fetch(path, init);
  const data = await res.json().catch(() => ({}));
  if (res.status === 401) throw new Unauthorized(data.message || 'unauthorized');
  return { status: res.status, data, etag: res.headers.get('etag') };
}

function onApiError(err) {
  if (err instanceof Unauthorized) {
    signOut('Your session is no longer valid (the admin token changed?). Sign in again.');
    return;
  }
  showBanner(`The config service could not be reached: ${err.message}`);
}

// ---------------------------------------------------------------- formatting

const pad = (n) => String(n).padStart(2, '0');
function fmtTime(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}
function fmtBytes(n) {
  if (!Number.isFinite(n)) return '';
  const units = ['bytes', 'KiB', 'MiB', 'GiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(v < 10 ? 2 : 1).replace(/\.0+$/, '')} ${units[i]}`;
}
const fmtCount = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : '–');

// ---------------------------------------------------------------- sign in / out

function showLogin(message = '') {
  stopPolling();
  $('admin-view').hidden = true;
  $('session').hidden = true;
  $('login-view').hidden = false;
  $('login-error').textContent = message;
  $('token').setAttribute('aria-invalid', message ? 'true' : 'false');
  $('token').focus();
}

function signOut(message = '') {
  state.token = '';
  state.doc = null;
  sessionStorage.removeItem(TOKEN_KEY);
  $('token').value = '';
  showLogin(message);
}

async function signIn(event) {
  event.preventDefault();
  const token = $('token').value.trim();
  if (!token) {
    showLogin('Enter the admin token.');
    return;
  }
  $('login-submit').disabled = true;
  try {
    const res = await api('GET', '/api/v1/policy', { token });
    if (res.status !== 200) throw new Error(res.data.message || `HTTP ${res.status}`);
    state.token = token;
    sessionStorage.setItem(TOKEN_KEY, token);
    $('token').value = '';
    enterAdmin(res.data);
  } catch (err) {
    showLogin(err instanceof Unauthorized ? 'This token was not accepted. Check it and try again.' : `Cannot reach the config service: ${err.message}`);
  } finally {
    $('login-submit').disabled = false;
  }
}

function enterAdmin(doc) {
  $('login-view').hidden = true;
  $('admin-view').hidden = false;
  $('session').hidden = false;
  loadDocument(doc);
  const fromHash = location.hash.replace('#', '');
  selectTab(['engine', 'scanning', 'activity'].includes(fromHash) ? fromHash : 'engine', false);
}

// ---------------------------------------------------------------- policy form

const fields = () => Array.from(document.querySelectorAll('#policy-form [data-path]'));

function getPath(obj, path) {
  return path.split('.').reduce((o, k) => (o == null ? undefined : o[k]), obj);
}
function setPath(obj, path, value) {
  const keys = path.split('.');
  let o = obj;
  for (const k of keys.slice(0, -1)) o = o[k] ??= {};
  o[keys[keys.length - 1]] = value;
}

/** The policy as the form shows it. Values are sent as typed; the server's schema judges them. */
function readForm() {
  const policy = {};
  for (const el of fields()) {
    const path = el.dataset.path;
    if (el.type === 'checkbox') setPath(policy, path, el.checked);
    else if (el.type === 'radio') {
      if (el.checked) setPath(policy, path, el.value);
      else if (getPath(policy, path) === undefined) setPath(policy, path, undefined);
    } else if (el.dataset.type === 'integer') {
      const v = el.value.trim().replace(/[ _,]/g, '');
      setPath(policy, path, /^\d{1,15}$/.test(v) ? Number(v) : el.value);
    } else setPath(policy, path, el.value);
  }
  return policy;
}

function fillForm(policy) {
  for (const el of fields()) {
    const v = getPath(policy, el.dataset.path);
    if (el.type === 'checkbox') el.checked = v === true;
    else if (el.type === 'radio') el.checked = el.value === v;
    else el.value = v ?? '';
  }
  updateSizeHint();
}

/** Key-order independent comparison of two policies. */
function canonical(v) {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') return `{${Object.keys(v).sort().filter((k) => v[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(',')}}`;
  return JSON.stringify(v);
}
const isDirty = () => state.doc !== null && canonical(readForm()) !== canonical(state.doc.policy);

function loadDocument(doc) {
  state.doc = doc;
  fillForm(doc.policy);
  clearErrors();
  hideBanner();
  $('policy-meta').textContent = `Policy version ${doc.version} · saved ${fmtTime(doc.updatedAt)}`;
  refreshDirty();
}

function refreshDirty(message) {
  const dirty = isDirty();
  $('save').disabled = !dirty;
  $('discard').disabled = !dirty;
  $('savebar').classList.toggle('dirty', dirty);
  $('savebar').classList.remove('saved');
  $('save-status').textContent = message ?? (dirty ? 'You have unsaved changes.' : 'No unsaved changes.');
}

function updateSizeHint() {
  const raw = $('f-limits.maxMessageBytes').value.trim().replace(/[ _,]/g, '');
  $('size-human').textContent = /^\d+$/.test(raw) ? `= ${fmtBytes(Number(raw))}. Larger messages are refused at SMTP time (SIZE).` : 'A whole number of bytes.';
}

function clearErrors() {
  for (const el of document.querySelectorAll('#policy-form .field-error')) el.textContent = '';
  for (const el of document.querySelectorAll('#policy-form [aria-invalid]')) el.removeAttribute('aria-invalid');
  for (const el of document.querySelectorAll('#policy-form .invalid')) el.classList.remove('invalid');
}

const tabOfField = (el) => (el.closest('[role="tabpanel"]')?.id || 'panel-engine').replace('panel-', '');

/** Shows each error next to its field; returns what could not be placed (a field the form does not show). */
function showFieldErrors(errors) {
  clearErrors();
  const unplaced = [];
  let first = null;
  for (const { field, message } of errors) {
    const out = $(`err-${field}`);
    const inputs = Array.from(document.querySelectorAll(`#policy-form [data-path="${CSS.escape(field)}"]`));
    if (!out || !inputs.length) {
      unplaced.push(`${field || 'body'}: ${message}`);
      continue;
    }
    out.textContent = message.charAt(0).toUpperCase() + message.slice(1) + '.';
    for (const el of inputs) el.setAttribute('aria-invalid', 'true');
    inputs[0].closest('.field, .check, fieldset')?.classList.add('invalid');
    first ??= inputs[0];
  }
  if (first) {
    selectTab(tabOfField(first), false);
    first.focus();
  }
  return unplaced;
}

async function save(event) {
  event.preventDefault();
  if (!state.doc) return;
  $('save').disabled = true;
  $('save-status').textContent = 'Saving…';
  hideBanner();
  try {
    const res = await api('PUT', '/api/v1/policy', {
      body: readForm(),
      headers: { 'if-match': `"${state.doc.version}"`, 'x-changed-by': 'admin-ui' },
    });
    if (res.status === 200) {
      loadDocument(res.data);
      refreshDirty(`Saved. Version ${res.data.version} is in force; every service applies it within a second.`);
      $('savebar').classList.add('saved');
    } else if (res.status === 400) {
      const errors = res.data.errors?.length ? res.data.errors : [{ field: res.data.field ?? '', message: res.data.message }];
      const unplaced = showFieldErrors(errors);
      if (unplaced.length) showBanner(`Not saved: ${unplaced.join('; ')}`);
      refreshDirty('Not saved: correct the highlighted field and apply again.');
    } else if (res.status === 412) {
      const now = res.data.currentVersion;
      showBanner(
        `Not saved: the policy was changed by someone else${now ? ` (it is now version ${now})` : ''} after you loaded version ${state.doc.version}. ` +
          'Reload it, then make your change again.',
        true,
      );
      refreshDirty('Not saved: the policy changed meanwhile.');
    } else {
      showBanner(`Not saved: ${res.data.message || `the server answered ${res.status}`}.`);
      refreshDirty('Not saved.');
    }
  } catch (err) {
    onApiError(err);
    refreshDirty('Not saved.');
  }
}

async function reloadPolicy() {
  try {
    const res = await api('GET', '/api/v1/policy');
    if (res.status === 200) {
      loadDocument(res.data);
      refreshDirty(`Reloaded version ${res.data.version}.`);
    } else showBanner(res.data.message || `Could not reload (HTTP ${res.status}).`);
  } catch (err) {
    onApiError(err);
  }
}

// ---------------------------------------------------------------- banner

function showBanner(text, offerReload = false) {
  $('banner-text').textContent = text;
  $('banner-reload').hidden = !offerReload;
  $('banner').hidden = false;
}
function hideBanner() {
  $('banner').hidden = true;
}

// ---------------------------------------------------------------- tabs

const TABS = ['engine', 'scanning', 'activity'];

function selectTab(name, focus = true) {
  state.tab = name;
  for (const t of TABS) {
    const tab = $(`tab-${t}`);
    const on = t === name;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    $(`panel-${t}`).hidden = !on;
  }
  if (focus) $(`tab-${name}`).focus();
  if (location.hash !== `#${name}`) history.replaceState(null, '', `#${name}`);
  // The save bar belongs to the policy tabs; on Activity it shows only while edits are pending.
  $('savebar').classList.toggle('on-activity', name === 'activity');
  startPolling();
}

function onTabKey(event) {
  const i = TABS.indexOf(state.tab);
  const next = { ArrowRight: i + 1, ArrowLeft: i - 1, Home: 0, End: TABS.length - 1 }[event.key];
  if (next === undefined) return;
  event.preventDefault();
  selectTab(TABS[(next + TABS.length) % TABS.length]);
}

// ---------------------------------------------------------------- engine status

async function refreshEngine() {
  try {
    const { status, data } = await api('GET', '/api/v1/engine');
    if (status !== 200) throw new Error(data.message || `HTTP ${status}`);
    const up = data.engines.filter((e) => e.reachable).length;
    const summary = $('engine-summary');
    summary.className = `engine-summary ${data.reachable ? 'ok' : 'bad'}`;
    summary.textContent = data.reachable
      ? `Engine reachable: ${up} of ${data.engines.length} ClamAV ${data.engines.length === 1 ? 'instance answers' : 'instances answer'}.`
      : 'Engine unreachable: no ClamAV instance answers. Messages are deferred (451) until one is back.';
    const body = $('engine-table').tBodies[0];
    body.replaceChildren(
      ...data.engines.map((e) =>
        row([
          code(e.address),
          badge(e.reachable ? 'Reachable' : 'Unreachable', e.reachable ? 'ok' : 'bad', e.error),
          text(e.engine || '–'),
          text(e.reachable ? e.signatures || 'custom database only' : '–'),
        ]),
      ),
    );
    $('engine-checked').textContent = `Checked ${fmtTime(data.checkedAt)}.`;
  } catch (err) {
    if (err instanceof Unauthorized) return onApiError(err);
    $('engine-summary').className = 'engine-summary bad';
    $('engine-summary').textContent = `Engine status unknown: ${err.message}`;
  }
}

// ---------------------------------------------------------------- activity

function setStat(stats, path) {
  for (const el of document.querySelectorAll(`[data-stat="${path}"]`)) el.textContent = fmtCount(getPath(stats, path));
}

const VERDICTS = { infected: ['Infected', 'bad'], unscannable: ['Unscannable', 'warn'], error: ['Scan error', 'neutral'] };
const ACTIONS = { removed: 'Removed', delivered: 'Delivered', tempfail: 'Deferred (451)' };

async function refreshActivity() {
  try {
    const [stats, events] = await Promise.all([api('GET', '/api/v1/stats'), api('GET', '/api/v1/events?limit=50')]);
    if (stats.status !== 200) throw new Error(stats.data.message);
    if (events.status !== 200) throw new Error(events.data.message);
    for (const el of document.querySelectorAll('[data-stat]')) setStat(stats.data, el.dataset.stat);
    const s = stats.data;
    $('stats-since').textContent = s.since
      ? `Counting events since ${fmtTime(s.since)} (events are kept 30 days)${s.complete ? '' : ', still reading older events…'}`
      : 'No activity recorded yet.';
    $('activity-updated').textContent = `Updated ${fmtTime(new Date().toISOString())}`;
    const list = events.data.events;
    $('detections-empty').hidden = list.length > 0;
    $('detections').tBodies[0].replaceChildren(
      ...list.map((e) => {
        const [label, tone] = VERDICTS[e.verdict] || [e.verdict, 'neutral'];
        const reason = e.verdict === 'unscannable' && e.reason ? ` (${e.reason})` : '';
        return row([
          text(fmtTime(e.time)),
          [stacked(e.protocol.toUpperCase(), e.direction), 'nowrap'],
          text(e.sender || '<>'),
          text(e.recipients.join(', ')),
          text(e.subject ?? '(no subject)', e.subject === undefined ? 'muted' : ''),
          e.file ? code(e.file) : text('(no name)', 'muted'),
          verdictCell(label + reason, tone, e.detail),
          [text(ACTIONS[e.action] || e.action), 'nowrap'],
        ]);
      }),
    );
  } catch (err) {
    if (err instanceof Unauthorized) return onApiError(err);
    $('activity-updated').textContent = `Not updated: ${err.message}`;
  }
}

// ---------------------------------------------------------------- polling

function stopPolling() {
  for (const t of Object.values(state.timers)) clearInterval(t);
  state.timers = { activity: 0, engine: 0, policy: 0 };
}

/** Notices a change saved by someone else: taken over when there are no local edits, else announced. */
async function checkPolicyVersion() {
  if (!state.doc) return;
  try {
    const res = await api('GET', '/api/v1/policy');
    if (res.status !== 200 || res.data.version === state.doc.version) return;
    if (!isDirty()) {
      loadDocument(res.data);
      refreshDirty(`Version ${res.data.version} was saved elsewhere and is shown now.`);
    } else {
      showBanner(
        `Someone else saved the policy (now version ${res.data.version}) while you were editing version ${state.doc.version}. ` +
          'Applying your changes will be refused; reload to see theirs.',
        true,
      );
    }
  } catch (err) {
    if (err instanceof Unauthorized) onApiError(err);
  }
}

function startPolling() {
  stopPolling();
  if (!state.token || document.hidden) return;
  if (state.tab === 'activity') {
    void refreshActivity();
    state.timers.activity = setInterval(refreshActivity, ACTIVITY_EVERY_MS);
  } else {
    if (state.tab === 'engine') {
      void refreshEngine();
      state.timers.engine = setInterval(refreshEngine, ENGINE_EVERY_MS);
    }
    state.timers.policy = setInterval(checkPolicyVersion, POLICY_EVERY_MS);
  }
}

// ---------------------------------------------------------------- DOM helpers

/** A table row; a cell is a node, or [node, className] for a styled cell. */
function row(cells) {
  const tr = document.createElement('tr');
  for (const c of cells) {
    const td = document.createElement('td');
    const [node, cls] = Array.isArray(c) ? c : [c, ''];
    if (cls) td.className = cls;
    td.append(node);
    tr.append(td);
  }
  return tr;
}
function stacked(main, sub) {
  const frag = document.createDocumentFragment();
  frag.append(text(main), text(sub, 'detail'));
  return frag;
}
function text(value, cls = '') {
  const span = document.createElement('span');
  span.textContent = value;
  if (cls) span.className = cls;
  return span;
}
function code(value) {
  const c = document.createElement('code');
  c.textContent = value;
  return c;
}
function badge(label, tone, title) {
  const b = text(label, `badge ${tone}`);
  if (title) {
    const frag = document.createDocumentFragment();
    frag.append(b, text(title, 'detail'));
    return frag;
  }
  return b;
}
function verdictCell(label, tone, detail) {
  return badge(label, tone, detail);
}

// ---------------------------------------------------------------- wiring

document.addEventListener('DOMContentLoaded', () => {
  $('login-form').addEventListener('submit', signIn);
  $('logout').addEventListener('click', () => {
    if (isDirty() && !confirm('Discard your unsaved changes and sign out?')) return;
    signOut();
  });
  $('policy-form').addEventListener('submit', save);
  $('policy-form').addEventListener('input', (e) => {
    if (e.target.id === 'f-limits.maxMessageBytes') updateSizeHint();
    const err = e.target.dataset?.path && $(`err-${e.target.dataset.path}`);
    if (err && err.textContent) {
      err.textContent = '';
      e.target.removeAttribute('aria-invalid');
      e.target.closest('.invalid')?.classList.remove('invalid');
    }
    refreshDirty();
  });
  $('policy-form').addEventListener('change', () => refreshDirty());
  $('discard').addEventListener('click', () => {
    loadDocument(state.doc);
    refreshDirty('Changes discarded.');
  });
  $('banner-reload').addEventListener('click', reloadPolicy);
  $('engine-refresh').addEventListener('click', refreshEngine);
  for (const t of TABS) $(`tab-${t}`).addEventListener('click', () => selectTab(t));
  document.querySelector('[role="tablist"]').addEventListener('keydown', onTabKey);
  document.addEventListener('visibilitychange', startPolling);
  window.addEventListener('beforeunload', (e) => {
    if (isDirty()) e.preventDefault();
  });

  if (!state.token) return showLogin();
  api('GET', '/api/v1/policy')
    .then((res) => (res.status === 200 ? enterAdmin(res.data) : showLogin(res.data.message)))
    .catch((err) => (err instanceof Unauthorized ? signOut('Your session expired. Sign in again.') : showLogin(`Cannot reach the config service: ${err.message}`)));
});
