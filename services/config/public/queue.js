// Mailwarden admin UI, Queue tab (queue mode): the delivery queue over /api/v1/queue.
// Loaded after app.js, whose helpers (api, row, text, code, fmtTime, onApiError, ...) it uses.
'use strict';

/** The message shown in detail, if any. */
let queueEntry = null;

const ROUTES = { inbound: 'inbound upstream', outbound: 'outbound upstream', bounce: 'bounces (DSN)' };

async function refreshQueue() {
  try {
    const res = await api('GET', '/api/v1/queue?limit=200');
    if (res.status !== 200) throw new Error(res.data.message || `HTTP ${res.status}`);
    $('qu-error').textContent = '';
    const { count, oldest, upstreams, messages } = res.data;
    $('qu-summary').textContent = count ? `${count} message${count === 1 ? '' : 's'} queued; the oldest accepted ${fmtTime(oldest)}.` : 'Nothing queued.';
    $('qu-empty').hidden = messages.length > 0;
    $('qu-upstreams').tBodies[0].replaceChildren(
      ...upstreams.map((u) => row([text(ROUTES[u.route] || u.route), code(u.upstream || '–'), text(String(u.queued)), text(String(u.failing), u.failing ? 'warn' : ''), text(u.lastError || '', 'detail')])),
    );
    $('qu-table').tBodies[0].replaceChildren(
      ...messages.map((m) => {
        const open = document.createElement('button');
        open.type = 'button';
        open.className = 'button subtle';
        open.textContent = 'Details';
        open.setAttribute('aria-label', `Details of ${m.ref}`);
        open.addEventListener('click', () => void openQueued(m.ref));
        return row([
          text(fmtTime(m.receivedAt)),
          code(m.ref),
          text(m.from || '<>'),
          text(m.to.join(', ')),
          text(String(m.attempts)),
          text(m.nextAttemptAt ? fmtTime(m.nextAttemptAt) : 'now'),
          text(m.lastError || '', 'detail'),
          open,
        ]);
      }),
    );
  } catch (err) {
    if (err instanceof Unauthorized) return onApiError(err);
    $('qu-error').textContent = `Could not read the queue: ${err.message}`;
  }
}

function showQueued(ref, entry) {
  queueEntry = { ref, ...entry };
  $('qu-detail').hidden = false;
  $('qu-detail-title').textContent = `Message ${ref}`;
  const meta = $('qu-meta');
  meta.replaceChildren();
  const add = (k, v) => {
    const dt = document.createElement('dt');
    dt.textContent = k;
    const dd = document.createElement('dd');
    dd.textContent = v;
    meta.append(dt, dd);
  };
  if (entry.status === 'queued') {
    const m = entry.message;
    add('Status', 'queued');
    add('Sender', m.from || '<> (a DSN)');
    add('Recipients', m.to.join(', '));
    add('Delivered to', m.delivered.join(', ') || '–');
    add('Given up on', m.failed.join(', ') || '–');
    add('Accepted', fmtTime(m.receivedAt));
    add('Next attempt', m.nextAttemptAt ? fmtTime(m.nextAttemptAt) : 'now');
  } else {
    const r = entry.record;
    add('Status', `finished: ${r.outcome}`);
    add('Finished', fmtTime(r.finishedAt));
    add('Delivered to', r.delivered.join(', ') || '–');
    add('Given up on', r.failed.map((f) => `${f.recipient} (${f.reply})`).join(', ') || '–');
    if (r.dsnRef) add('DSN', r.dsnRef);
  }
  $('qu-attempts').tBodies[0].replaceChildren(
    ...(entry.attempts || []).flatMap((a) => a.outcomes.map((o) => row([text(fmtTime(a.at)), code(a.upstream), text(o.recipient), text(o.reply, o.code >= 200 && o.code < 300 ? '' : 'warn')]))),
  );
  $('qu-retry').disabled = entry.status !== 'queued';
  $('qu-delete').disabled = entry.status !== 'queued';
}

async function openQueued(ref) {
  try {
    const res = await api('GET', `/api/v1/queue/${encodeURIComponent(ref)}`);
    if (res.status !== 200) throw new Error(res.data.message || `HTTP ${res.status}`);
    $('qu-status').textContent = '';
    showQueued(ref, res.data);
    $('qu-detail-title').focus?.();
  } catch (err) {
    if (err instanceof Unauthorized) return onApiError(err);
    $('qu-error').textContent = `Could not open ${ref}: ${err.message}`;
  }
}

async function queueAction(label, method, path, expected) {
  const e = queueEntry;
  if (!e) return;
  $('qu-status').textContent = `${label}…`;
  try {
    const res = await api(method, path);
    if (res.status !== expected) throw new Error(res.data.message || `HTTP ${res.status}`);
    return true;
  } catch (err) {
    if (err instanceof Unauthorized) return onApiError(err);
    $('qu-status').textContent = `${label} failed: ${err.message}`;
    return false;
  }
}

document.addEventListener('DOMContentLoaded', () => {
  $('qu-close').addEventListener('click', () => {
    $('qu-detail').hidden = true;
    queueEntry = null;
  });
  $('qu-retry').addEventListener('click', async () => {
    const ref = queueEntry?.ref;
    if (!ref || !(await queueAction('Retrying', 'POST', `/api/v1/queue/${encodeURIComponent(ref)}/retry`, 202))) return;
    await refreshQueue();
    $('qu-status').textContent = `Delivery of ${ref} is being tried now.`;
  });
  $('qu-delete').addEventListener('click', async () => {
    const ref = queueEntry?.ref;
    if (!ref || !confirm(`Delete ${ref} from the queue? It will not be delivered, and its sender is not told.`)) return;
    if (!(await queueAction('Deleting', 'DELETE', `/api/v1/queue/${encodeURIComponent(ref)}`, 204))) return;
    $('qu-detail').hidden = true;
    queueEntry = null;
    await refreshQueue();
    $('qu-summary').textContent = `Deleted ${ref}. ${$('qu-summary').textContent}`;
  });
});
