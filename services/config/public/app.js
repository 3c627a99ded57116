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
  /** Quarantine tab: the current filters, page and the entry shown in detail. */
  q: { filters: {}, offset: 0, limit: 20, nextOffset: undefined, entry: null },
};
const DEFAULT_RETENTION_DAYS = 30;

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
  selectTab(TABS.includes(fromHash) ? fromHash : 'engine', false);
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
    } else if (el.dataset.type === 'number') {
      const v = el.value.trim();
      setPath(policy, path, /^\d{1,6}(\.\d{1,6})?$/.test(v) ? Number(v) : el.value);
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
  // A policy stored before quarantine existed has no retention: the form shows (and saves) the default.
  doc.policy.quarantine ??= { retentionDays: DEFAULT_RETENTION_DAYS };
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

const TABS = ['engine', 'scanning', 'activity', 'quarantine', 'queue'];

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
  $('savebar').classList.toggle('on-activity', name === 'activity' || name === 'quarantine' || name === 'queue');
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
    const [stats, events, audit] = await Promise.all([api('GET', '/api/v1/stats'), api('GET', '/api/v1/events?limit=50'), api('GET', '/api/v1/audit?limit=50')]);
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
    const actions = audit.status === 200 ? audit.data.actions : [];
    $('audit-empty').hidden = actions.length > 0;
    $('audit').tBodies[0].replaceChildren(
      ...actions.map((a) =>
        row([
          text(fmtTime(a.time)),
          [text(AUDIT_KINDS[a.kind] || a.kind), 'nowrap'],
          code(a.ref),
          text(`${a.by} (${a.client})`),
          text([a.recipients?.length ? `to ${a.recipients.join(', ')}` : '', a.detail || ''].filter(Boolean).join(' · ')),
        ]),
      ),
    );
  } catch (err) {
    if (err instanceof Unauthorized) return onApiError(err);
    $('activity-updated').textContent = `Not updated: ${err.message}`;
  }
}

const AUDIT_KINDS = {
  'quarantine-released': 'Released',
  'quarantine-deleted': 'Deleted',
  'quarantine-rescanned': 'Rescanned',
  'quarantine-downloaded': 'Downloaded',
};

// ---------------------------------------------------------------- quarantine

const REASONS = { infected: 'Infected', encrypted: 'Encrypted', corrupt: 'Corrupt', limits: 'Over the limits' };
const partReason = (p) => (p.verdict === 'infected' ? 'infected' : p.reason || 'unscannable');

function readFilters() {
  const f = {};
  for (const k of ['sender', 'recipient', 'reason', 'signature', 'ref']) {
    const v = $(`q-${k}`).value.trim();
    if (v) f[k] = k === 'ref' ? v.toLowerCase() : v;
  }
  // Dates are local days: from the start of "from" to the end of "to".
  if ($('q-from').value) f.from = new Date(`${$('q-from').value}T00:00:00`).toISOString();
  if ($('q-to').value) f.to = new Date(new Date(`${$('q-to').value}T00:00:00`).getTime() + 86_400_000).toISOString();
  return f;
}

async function refreshQuarantine() {
  const q = state.q;
  const params = new URLSearchParams({ ...q.filters, limit: String(q.limit), offset: String(q.offset) });
  try {
    const res = await api('GET', `/api/v1/quarantine?${params}`);
    if (res.status === 400) {
      $('q-error').textContent = res.data.message;
      return;
    }
    if (res.status !== 200) throw new Error(res.data.message || `HTTP ${res.status}`);
    $('q-error').textContent = '';
    const { entries, total, nextOffset, retentionDays } = res.data;
    q.nextOffset = nextOffset;
    $('q-retention').textContent = retentionDays > 0 ? `Originals are kept ${retentionDays} day${retentionDays === 1 ? '' : 's'} (policy).` : 'Retention is 0: nothing new is kept.';
    $('q-count').textContent = total ? `${q.offset + 1}–${q.offset + entries.length} of ${total}` : '';
    $('q-empty').hidden = entries.length > 0;
    $('q-prev').disabled = q.offset === 0;
    $('q-next').disabled = nextOffset === undefined;
    $('q-table').tBodies[0].replaceChildren(
      ...entries.map((e) => {
        const open = document.createElement('button');
        open.type = 'button';
        open.className = 'button subtle';
        open.textContent = 'Details';
        open.setAttribute('aria-label', `Details of ${e.ref}`);
        open.addEventListener('click', () => void openEntry(e.ref));
        return row([
          text(fmtTime(e.time)),
          code(e.ref),
          text(e.sender || '<>'),
          text(e.recipients.join(', ')),
          text(e.subject ?? '(no subject)', e.subject === undefined ? 'muted' : ''),
          stackedList(e.parts.map((p) => `${p.filename || `part ${p.path}`}: ${REASONS[partReason(p)] || partReason(p)}${p.signature ? ` (${p.signature})` : ''}`)),
          open,
        ]);
      }),
    );
  } catch (err) {
    if (err instanceof Unauthorized) return onApiError(err);
    $('q-error').textContent = `Could not list the quarantine: ${err.message}`;
  }
}

function stackedList(lines) {
  const frag = document.createDocumentFragment();
  lines.forEach((l, i) => frag.append(text(l, i ? 'detail' : '')));
  return frag;
}

function showEntry(e) {
  state.q.entry = e;
  $('q-detail').hidden = false;
  $('q-detail-title').textContent = `Message ${e.ref}`;
  const meta = [
    ['Quarantined', fmtTime(e.time)],
    ['Protocol', `${e.protocol.toUpperCase()} ${e.direction}`],
    ['Sender', e.sender || '<>'],
    ['Recipients', e.recipients.join(', ')],
    ['Subject', e.subject ?? '(no subject)'],
    ['Size', fmtBytes(e.size)],
    ['Message reference', e.messageRef],
  ];
  $('q-meta').replaceChildren(
    ...meta.flatMap(([k, v]) => {
      const dt = document.createElement('dt');
      dt.textContent = k;
      const dd = document.createElement('dd');
      dd.textContent = v;
      return [dt, dd];
    }),
  );
  $('q-parts').tBodies[0].replaceChildren(
    ...e.parts.map((p) =>
      row([
        text(p.path),
        p.filename ? code(p.filename) : text('(no name)', 'muted'),
        text(p.contentType),
        text(fmtBytes(p.size)),
        badge(REASONS[partReason(p)] || partReason(p), p.verdict === 'infected' ? 'bad' : 'warn', p.signature),
        code(p.sha256.slice(0, 16) + '…'),
      ]),
    ),
  );
  $('q-releases').replaceChildren(
    ...e.releases.map((r) => {
      const li = document.createElement('li');
      li.textContent = `Released ${fmtTime(r.at)} by ${r.by} to ${r.recipients.join(', ')}${r.headerAdded ? ' (with header)' : ''}: ${r.reply}`;
      return li;
    }),
  );
  const r = e.lastRescan;
  $('q-rescan-result').textContent = r
    ? `Rescanned ${fmtTime(r.at)}: ${r.verdict === 'clean' ? 'Clean' : r.verdict === 'infected' ? 'Infected' : 'Unscannable'}` +
      (r.findings.length ? ` (${r.findings.map((f) => `${f.filename || `part ${f.path}`}: ${f.signature || f.verdict}`).join('; ')})` : '')
    : '';
  $('q-release-confirm').hidden = true;
}

async function openEntry(ref) {
  try {
    const res = await api('GET', `/api/v1/quarantine/${encodeURIComponent(ref)}`);
    if (res.status !== 200) throw new Error(res.data.message || `HTTP ${res.status}`);
    $('q-status').textContent = '';
    showEntry(res.data);
    $('q-detail').scrollIntoView({ block: 'nearest' });
    $('q-detail-title').focus?.();
  } catch (err) {
    if (err instanceof Unauthorized) return onApiError(err);
    $('q-error').textContent = `Could not open ${ref}: ${err.message}`;
  }
}

async function entryAction(label, run) {
  const e = state.q.entry;
  if (!e) return;
  $('q-status').textContent = `${label}…`;
  for (const b of document.querySelectorAll('#q-detail button')) b.disabled = true;
  try {
    await run(e);
  } catch (err) {
    if (err instanceof Unauthorized) return onApiError(err);
    $('q-status').textContent = `${label} failed: ${err.message}`;
  } finally {
    for (const b of document.querySelectorAll('#q-detail button')) b.disabled = false;
  }
}

async function downloadOriginal() {
  await entryAction('Downloading', async (e) => {
    // The token travels in a header, so the file is fetched and handed to the browser as a blob.
    const res = await fetch(`/api/v1/quarantine/${encodeURIComponent(e.ref)}/original`, { headers: { authorization: `Bearer ${state.token}` } });
    if (res.status === 401) throw new Unauthorized('unauthorized');
    if (!res.ok) throw new Error((await res.json().catch(() => ({}))).message || `HTTP ${res.status}`);
    const url = URL.createObjectURL(await res.blob());
    const a = document.createElement('a');
    a.href = url;
    a.download = `${e.ref}.eml`;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    $('q-status').textContent = `Downloaded ${e.ref}.eml.`;
  });
}

async function releaseEntry() {
  const to = $('q-release-to').value.split(/[\s,;]+/).filter(Boolean);
  const body = { addHeader: $('q-release-header').checked, ...(to.length ? { recipients: to } : {}) };
  await entryAction('Releasing', async (e) => {
    const res = await api('POST', `/api/v1/quarantine/${encodeURIComponent(e.ref)}/release`, { body });
    if (res.status !== 200) throw new Error(res.data.message || `HTTP ${res.status}`);
    showEntry(res.data);
    const last = res.data.releases[res.data.releases.length - 1];
    $('q-status').textContent = `Released to ${last.recipients.join(', ')}.`;
  });
}

async function rescanEntry() {
  await entryAction('Rescanning', async (e) => {
    const res = await api('POST', `/api/v1/quarantine/${encodeURIComponent(e.ref)}/rescan`);
    if (res.status !== 200) throw new Error(res.data.message || `HTTP ${res.status}`);
    showEntry(res.data);
    $('q-status').textContent = 'Rescan done.';
  });
}

async function deleteEntry() {
  const e = state.q.entry;
  if (!e || !confirm(`Delete ${e.ref} from quarantine? The original cannot be recovered afterwards.`)) return;
  await entryAction('Deleting', async () => {
    const res = await api('DELETE', `/api/v1/quarantine/${encodeURIComponent(e.ref)}`);
    if (res.status !== 204) throw new Error(res.data.message || `HTTP ${res.status}`);
    state.q.entry = null;
    $('q-detail').hidden = true;
    await refreshQuarantine();
    $('q-count').textContent = `Deleted ${e.ref}. ${$('q-count').textContent}`;
  });
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
  } else if (state.tab === 'quarantine') {
    void refreshQuarantine();
  } else if (state.tab === 'queue') {
    // queue.js
    void refreshQueue();
    state.timers.activity = setInterval(refreshQueue, ACTIVITY_EVERY_MS);
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
  $('q-search').addEventListener('submit', (e) => {
    e.preventDefault();
    state.q.filters = readFilters();
    state.q.offset = 0;
    void refreshQuarantine();
  });
  $('q-clear').addEventListener('click', () => {
    for (const k of ['sender', 'recipient', 'reason', 'signature', 'ref', 'from', 'to']) $(`q-${k}`).value = '';
    state.q.filters = {};
    state.q.offset = 0;
    void refreshQuarantine();
  });
  $('q-prev').addEventListener('click', () => {
    state.q.offset = Math.max(0, state.q.offset - state.q.limit);
    void refreshQuarantine();
  });
  $('q-next').addEventListener('click', () => {
    if (state.q.nextOffset === undefined) return;
    state.q.offset = state.q.nextOffset;
    void refreshQuarantine();
  });
  $('q-close').addEventListener('click', () => {
    $('q-detail').hidden = true;
    state.q.entry = null;
  });
  $('q-download').addEventListener('click', downloadOriginal);
  $('q-release').addEventListener('click', () => {
    const e = state.q.entry;
    if (!e) return;
    $('q-release-to').value = e.recipients.join(', ');
    $('q-release-header').checked = false;
    $('q-release-confirm').hidden = false;
    $('q-release-to').focus();
  });
  $('q-release-cancel').addEventListener('click', () => {
    $('q-release-confirm').hidden = true;
  });
  $('q-release-go').addEventListener('click', releaseEntry);
  $('q-rescan').addEventListener('click', rescanEntry);
  $('q-delete').addEventListener('click', deleteEntry);
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
