// Webhook settings page, shared core: state, DOM and API helpers, messages, the confirmation
// dialog, the clipboard and time formatting. Plain ES modules served as they are (no build step)
// under a strict same-origin CSP: everything rendered from data goes through textContent /
// createElement (never innerHTML), and visibility uses the `hidden` attribute (no inline styles).
import { openDetails } from './log.js';

export const TOKEN_KEY = 'rrPortalToken';
export const PAGE_SIZE = 20;
export const POLL_INTERVAL_MS = 500;
export const POLL_TIMEOUT_MS = 30000;
export const EXCERPT_CHARS = 200;
export const MASKED_SECRET = 'whsec_••••••••••••••••';
export const AUTH_MESSAGE = 'This link is invalid or has expired. Open the webhook settings again from your dashboard to get a new one.';

export const state = {
  token: null,
  account: null,
  eventTypes: [],
  endpoints: [],
  editingId: null,
  log: { cursor: null, olderStack: [], nextCursor: null, page: 1, shown: [] },
  /** `overview`, or `endpoint` with the endpoint page's id (hash route `#/endpoints/<id>`). */
  view: { name: 'overview', endpointId: null },
  details: { id: null, attempts: 0 },
  authFailed: false,
};

// ---------------------------------------------------------------------------
// Small helpers

export const $ = (id) => document.getElementById(id);
export const inCard = (card, testId) => card.querySelector(`[data-testid="${testId}"]`);
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
export const isPaid = () => state.account && state.account.plan === 'paid';
/** A read-only portal link: the page shows everything and offers no change (the API refuses them too). */
export const isReadOnly = () => state.account && state.account.access === 'read';
export const WRITE_CONTROLS = ['rotate-secret', 'edit-endpoint', 'toggle-enabled', 'delete-endpoint'];

export function el(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null) continue;
    if (key === 'text') node.textContent = value;
    else if (key === 'className') node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child);
  return node;
}

const pad = (n) => String(n).padStart(2, '0');

/** `UTC+1`, `UTC-3:30`, `UTC`: the offset of the browser's time zone at that instant. */
export function zoneLabel(date) {
  const offset = -date.getTimezoneOffset();
  if (offset === 0) return 'UTC';
  const abs = Math.abs(offset);
  return `UTC${offset > 0 ? '+' : '-'}${Math.floor(abs / 60)}${abs % 60 ? `:${pad(abs % 60)}` : ''}`;
}

/** `2026-11-27 12:04:05 UTC+1`: local time, unambiguous, with its zone (the ISO instant is in `title` where it is shown). */
export function formatTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())} ${zoneLabel(d)}`;
}

/** A <time> element showing formatTime, with the exact instant in datetime and title. */
export function timeEl(iso) {
  return el('time', { datetime: iso, title: iso ? new Date(iso).toISOString() : undefined, text: formatTime(iso) });
}

/** The browser's time zone name, e.g. `Europe/Paris` (times on the page are shown in it). */
export function zoneName() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || zoneLabel(new Date());
  } catch {
    return zoneLabel(new Date());
  }
}

/** "in 5 min" / "2 h ago": a rough hint next to an absolute time. */
export function relativeTime(iso) {
  const diffMs = new Date(iso).getTime() - Date.now();
  if (!Number.isFinite(diffMs)) return '';
  const abs = Math.abs(diffMs);
  let amount;
  if (abs < 60000) amount = `${Math.max(1, Math.round(abs / 1000))} s`;
  else if (abs < 3600000) amount = `${Math.round(abs / 60000)} min`;
  else if (abs < 172800000) amount = `${Math.round(abs / 3600000)} h`;
  else amount = `${Math.round(abs / 86400000)} days`;
  return diffMs >= 0 ? `in ${amount}` : `${amount} ago`;
}

export function excerpt(text, max = EXCERPT_CHARS) {
  if (!text) return '';
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

export function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

// ---------------------------------------------------------------------------
// Token and API

/** Reads the token from `#token=…` once, keeps it in sessionStorage and removes it from the URL. */
export function readToken() {
  const fromHash = new URLSearchParams(location.hash.replace(/^#/, '')).get('token');
  if (fromHash) {
    try {
      sessionStorage.setItem(TOKEN_KEY, fromHash);
    } catch {
      /* storage disabled: keep it in memory only */
    }
    // The token is a secret: it must not stay in the address bar, history or bookmarks.
    history.replaceState(null, '', location.pathname);
    return fromHash;
  }
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `The server answered ${status}.`);
    this.status = status;
    this.code = body && body.code;
    this.detail = this.message;
    this.errors = body && Array.isArray(body.errors) ? body.errors : [];
  }
}

/** One same-origin JSON call. A 401 ends the session for the whole page. */
export async function api(method, path, body) {
  if (state.authFailed) throw new ApiError(401, { code: 'unauthorized', detail: AUTH_MESSAGE });
  const headers = { Accept: 'application/json', Authorization: `Bearer ${state.token}` };
  const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(0, { code: 'network_error', detail: 'Could not reach the server. Check your connection and try again.' });
  }
  if (response.status === 401) {
    showAuthError();
    throw new ApiError(401, { code: 'unauthorized', detail: AUTH_MESSAGE });
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data);
  return data;
}

export const enc = encodeURIComponent;

// ---------------------------------------------------------------------------
// Page-level messages

export function showAuthError() {
  state.authFailed = true;
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* ignore */
  }
  const dialog = $('confirm-dialog');
  if (dialog.open) dialog.close('cancel');
  $('main').hidden = true;
  $('loading').hidden = true;
  $('account-line').hidden = true;
  const message = $('auth-error');
  message.textContent = AUTH_MESSAGE;
  message.hidden = false;
}

let toastTimer = null;

/** Announces a result in the polite live region (a fresh node so repeats are read again). */
export function announce(message, isError = false) {
  const region = $('status-region');
  region.classList.toggle('is-error', isError);
  region.replaceChildren(el('p', { text: message }));
  $('toast-close').hidden = false;
  // Successes fade away by themselves; errors stay until dismissed or replaced.
  clearTimeout(toastTimer);
  if (!isError) toastTimer = setTimeout(dismissToast, 8000);
}

export function dismissToast() {
  clearTimeout(toastTimer);
  $('status-region').replaceChildren();
  $('toast-close').hidden = true;
}

/** Reports a failed call; 401 already replaced the page. */
export function reportError(err) {
  if (err && err.status === 401) return;
  announce(err && err.detail ? err.detail : 'Something went wrong. Please try again.', true);
}

/**
 * Marks a button busy while `work` runs, so a double click does not send twice. It uses
 * aria-disabled rather than `disabled` because a disabled button loses keyboard focus.
 */
export async function busy(button, work) {
  if (button.dataset.busy) return undefined;
  button.dataset.busy = 'true';
  button.setAttribute('aria-disabled', 'true');
  try {
    return await work();
  } finally {
    delete button.dataset.busy;
    button.removeAttribute('aria-disabled');
  }
}

// ---------------------------------------------------------------------------
// Confirmation dialog (native <dialog>; tests click the confirm button by its data-testid)

export function confirmAction({ title, body, confirmLabel, testId }) {
  const dialog = $('confirm-dialog');
  const opener = document.activeElement;
  $('confirm-title').textContent = title;
  $('confirm-body').textContent = body;
  const ok = $('confirm-ok');
  ok.textContent = confirmLabel;
  ok.setAttribute('data-testid', testId);
  dialog.returnValue = '';
  return new Promise((resolve) => {
    dialog.addEventListener(
      'close',
      () => {
        if (opener && opener.isConnected) opener.focus();
        resolve(dialog.returnValue === 'confirm');
      },
      { once: true },
    );
    dialog.showModal();
    $('confirm-title').focus();
  });
}

// ---------------------------------------------------------------------------
// Clipboard

export async function copyText(text) {
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(text);
      return true;
    }
  } catch {
    /* permission denied: try the fallback */
  }
  // Fallback for plain-http origins: a selected off-screen textarea and the legacy copy command.
  const previous = document.activeElement;
  const area = el('textarea', { readonly: '', className: 'offscreen', 'aria-hidden': 'true' });
  area.value = text;
  document.body.append(area);
  area.select();
  let ok;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  area.remove();
  if (previous && previous.focus) previous.focus();
  return ok;
}

export async function copySecret(secret) {
  if (await copyText(secret)) announce('Secret copied to the clipboard.');
  else announce('Copying is not available here. Reveal the secret and copy it by hand.', true);
}

/** Polls a delivery until `done(delivery)` or the time runs out; returns the last answer. */
export async function pollDelivery(id, done) {
  const deadline = Date.now() + POLL_TIMEOUT_MS;
  for (;;) {
    const delivery = await api('GET', `/v1/deliveries/${enc(id)}`);
    if (done(delivery) || Date.now() >= deadline) return delivery;
    await sleep(POLL_INTERVAL_MS);
  }
}

export function renderTestPending(box, text, isError = false) {
  box.hidden = false;
  box.className = `test-result${isError ? ' is-failed' : ''}`;
  box.removeAttribute('data-status');
  box.replaceChildren(el('p', { text }));
}

/** Shows the outcome of a test delivery and returns a one-line summary for the live region. */
export function renderTestResult(box, d) {
  const last = d.attempts[d.attempts.length - 1];
  const delivered = d.status === 'delivered';
  const outcome = delivered ? 'delivered' : last ? 'failed' : d.status;
  box.hidden = false;
  box.className = `test-result ${delivered ? 'is-delivered' : 'is-failed'}`;
  box.dataset.status = outcome;

  const headline = last ? `Test ${outcome}` : `Test ${d.status}: no attempt yet`;
  const facts = el('dl', { className: 'facts facts-compact' });
  const add = (term, value, className) => facts.append(el('dt', { text: term }), el('dd', { text: value, className }));
  if (last) {
    if (last.statusCode !== undefined) add('Status code', String(last.statusCode));
    // A bare "HTTP 503" error only repeats the status code.
    if (last.error && last.error !== `HTTP ${last.statusCode}`) add('Error', last.error);
    add('Latency', `${last.durationMs} ms`);
  }
  if (d.status === 'pending' && d.nextAttemptAt) add('Next retry at', `${formatTime(d.nextAttemptAt)} (${relativeTime(d.nextAttemptAt)})`);
  if (d.finishedReason && !delivered) add('Reason', d.finishedReason);

  const children = [el('p', { className: 'test-headline', text: headline }), facts];
  if (last && last.responseBody) {
    children.push(el('p', { className: 'muted', text: 'Response body' }), el('pre', { className: 'excerpt', text: excerpt(last.responseBody) }));
  }
  const open = el('button', { type: 'button', className: 'btn btn-small btn-quiet', text: 'View delivery' });
  open.addEventListener('click', () => openDetails(d.id, open));
  children.push(open);
  box.replaceChildren(...children);

  const code = last ? (last.statusCode !== undefined ? `HTTP ${last.statusCode}` : last.error) : '';
  return `${headline}${code ? ` (${code}` : ''}${last ? `, ${last.durationMs} ms)` : ''}.`;
}

export const endpointById = (id) => state.endpoints.find((ep) => ep.id === id);

export function endpointLabel(endpointId, withId = false) {
  const ep = endpointById(endpointId);
  if (ep) return ep.url;
  return withId ? `Deleted endpoint (${endpointId})` : 'Deleted endpoint';
}
