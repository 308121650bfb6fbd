/* global renderEndpointStats -- from stats.js, loaded before this script */
// Webhook settings portal: plain ES2020, no framework, no build step.
// Everything rendered from data goes through textContent / createElement (never innerHTML),
// and the page runs under a strict CSP: no inline styles, so visibility uses the `hidden` attribute.
'use strict';

const TOKEN_KEY = 'rrPortalToken';
const PAGE_SIZE = 20;
const POLL_INTERVAL_MS = 500;
const POLL_TIMEOUT_MS = 30000;
const EXCERPT_CHARS = 200;
const MASKED_SECRET = 'whsec_••••••••••••••••';
const AUTH_MESSAGE = 'This link is invalid or has expired. Open the webhook settings again from your dashboard to get a new one.';

const state = {
  token: null,
  account: null,
  eventTypes: [],
  endpoints: [],
  editingId: null,
  log: { cursor: null, olderStack: [], nextCursor: null, page: 1 },
  details: { id: null, attempts: 0 },
  authFailed: false,
};

// ---------------------------------------------------------------------------
// Small helpers

const $ = (id) => document.getElementById(id);
const inCard = (card, testId) => card.querySelector(`[data-testid="${testId}"]`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const isPaid = () => state.account && state.account.plan === 'paid';
/** A read-only portal link: the page shows everything and offers no change (the API refuses them too). */
const isReadOnly = () => state.account && state.account.access === 'read';
const WRITE_CONTROLS = ['rotate-secret', 'edit-endpoint', 'toggle-enabled', 'delete-endpoint'];

function el(tag, props = {}, children = []) {
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

function formatTime(iso) {
  if (!iso) return '—';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

/** "in 5 min" / "2 h ago": a rough hint next to an absolute time. */
function relativeTime(iso) {
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

function excerpt(text, max = EXCERPT_CHARS) {
  if (!text) return '';
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function plural(n, one, many) {
  return `${n} ${n === 1 ? one : many}`;
}

// ---------------------------------------------------------------------------
// Token and API

/** Reads the token from `#token=…` once, keeps it in sessionStorage and removes it from the URL. */
function readToken() {
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

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.detail) || `The server answered ${status}.`);
    this.status = status;
    this.code = body && body.code;
    this.detail = this.message;
    this.errors = body && Array.isArray(body.errors) ? body.errors : [];
  }
}

/** One same-origin JSON call. A 401 ends the session for the whole page. */
async function api(method, path, body) {
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

const enc = encodeURIComponent;

// ---------------------------------------------------------------------------
// Page-level messages

function showAuthError() {
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
function announce(message, isError = false) {
  const region = $('status-region');
  region.classList.toggle('is-error', isError);
  region.replaceChildren(el('p', { text: message }));
  $('toast-close').hidden = false;
  // Successes fade away by themselves; errors stay until dismissed or replaced.
  clearTimeout(toastTimer);
  if (!isError) toastTimer = setTimeout(dismissToast, 8000);
}

function dismissToast() {
  clearTimeout(toastTimer);
  $('status-region').replaceChildren();
  $('toast-close').hidden = true;
}

/** Reports a failed call; 401 already replaced the page. */
function reportError(err) {
  if (err && err.status === 401) return;
  announce(err && err.detail ? err.detail : 'Something went wrong. Please try again.', true);
}

/**
 * Marks a button busy while `work` runs, so a double click does not send twice. It uses
 * aria-disabled rather than `disabled` because a disabled button loses keyboard focus.
 */
async function busy(button, work) {
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

function confirmAction({ title, body, confirmLabel, testId }) {
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

async function copyText(text) {
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

async function copySecret(secret) {
  if (await copyText(secret)) announce('Secret copied to the clipboard.');
  else announce('Copying is not available here. Reveal the secret and copy it by hand.', true);
}

// ---------------------------------------------------------------------------
// Endpoint form (add and edit share one form)

const FIELD_IDS = {
  url: 'endpoint-url',
  description: 'endpoint-description',
  rateLimitPerSecond: 'endpoint-rate-limit',
  maxInFlight: 'endpoint-max-in-flight',
  headers: 'endpoint-headers',
};
const LIMIT_FIELDS = ['rateLimitPerSecond', 'maxInFlight'];
const HELP_IDS = { url: 'endpoint-url-help', eventTypes: 'event-types-help', headers: 'endpoint-headers-help' };

function renderEventTypeOptions() {
  const box = $('event-type-options');
  box.replaceChildren();
  for (const et of state.eventTypes) {
    const id = `event-type-${et.type}`;
    const helpId = `${id}-help`;
    const input = el('input', { type: 'checkbox', id, name: 'eventTypes', value: et.type, 'data-testid': id, 'aria-describedby': helpId });
    box.append(
      el('div', { className: 'check' }, [
        input,
        el('div', {}, [el('label', { for: id, className: 'mono', text: et.type }), el('p', { id: helpId, className: 'help', text: et.description })]),
      ]),
    );
  }
}

function eventTypeInputs() {
  return [...$('event-type-options').querySelectorAll('input[type="checkbox"]')];
}

function clearFieldErrors() {
  for (const field of ['url', 'eventTypes', 'description', ...LIMIT_FIELDS, 'headers']) {
    const message = $(`field-error-${field}`);
    message.hidden = true;
    message.textContent = '';
    markField(field, false);
  }
  $('form-error').hidden = true;
  $('form-error').textContent = '';
}

/** Sets aria-invalid and links the error text (aria-describedby) for one field, or undoes both. */
function markField(field, invalid) {
  const errorId = invalid ? `field-error-${field}` : null;
  const describe = (node, ...ids) => {
    const list = ids.filter(Boolean);
    if (list.length) node.setAttribute('aria-describedby', list.join(' '));
    else node.removeAttribute('aria-describedby');
  };
  const controls = field === 'eventTypes' ? eventTypeInputs() : [$(FIELD_IDS[field])];
  for (const control of controls) {
    if (invalid) control.setAttribute('aria-invalid', 'true');
    else control.removeAttribute('aria-invalid');
    // Each checkbox keeps its own help text; the url keeps the field's help text.
    const ownHelp = field === 'eventTypes' ? `${control.id}-help` : HELP_IDS[field];
    describe(control, ownHelp, errorId);
  }
  if (field === 'eventTypes') describe($('event-types-fieldset'), HELP_IDS.eventTypes, errorId);
}

/** Shows 400 `errors` next to their fields; paths like `eventTypes.2` belong to the event types. */
function showFieldErrors(errors) {
  const byField = { url: [], eventTypes: [], description: [], rateLimitPerSecond: [], maxInFlight: [], headers: [] };
  const other = [];
  for (const { path, message } of errors) {
    const [field, ...rest] = String(path || '').split('.');
    // `headers.X-Name`: say which header (a name may itself contain dots).
    if (field === 'headers' && rest.length) byField.headers.push(`${rest.join('.')}: ${message}.`);
    else if (byField[field]) byField[field].push(message);
    else other.push(message);
  }
  let firstInvalid = null;
  for (const [field, messages] of Object.entries(byField)) {
    if (!messages.length) continue;
    const message = $(`field-error-${field}`);
    message.textContent = messages.join(' ');
    message.hidden = false;
    markField(field, true);
    firstInvalid = firstInvalid || (field === 'eventTypes' ? eventTypeInputs()[0] : $(FIELD_IDS[field]));
  }
  if (other.length) showFormError(other.join(' '));
  if (firstInvalid) firstInvalid.focus();
}

function showFormError(text) {
  $('form-error').textContent = text;
  $('form-error').hidden = false;
}

function readForm() {
  return {
    url: $('endpoint-url').value.trim(),
    eventTypes: eventTypeInputs()
      .filter((box) => box.checked)
      .map((box) => box.value),
    description: $('endpoint-description').value.trim(),
    // Empty: no limit (null). The server names a bad value; a non-number is sent as typed so it does.
    rateLimitPerSecond: limitValue($('endpoint-rate-limit').value),
    maxInFlight: limitValue($('endpoint-max-in-flight').value),
    headers: parseHeaders($('endpoint-headers').value),
  };
}

/** `Name: value` per line (blank lines ignored); a line without a colon is kept as an error for validateLocally. */
function parseHeaders(text) {
  const headers = {};
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) return { invalidLine: line.trim() };
    headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  return headers;
}

function headersText(headers) {
  return Object.entries(headers || {})
    .map(([name, value]) => `${name}: ${value}`)
    .join('\n');
}

function limitValue(raw) {
  const text = raw.trim();
  if (!text) return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : text;
}

/** Catches the two obvious mistakes before a round trip; the server checks everything else. */
function validateLocally(values) {
  const errors = [];
  if (!values.url) errors.push({ path: 'url', message: 'Enter the URL of your endpoint.' });
  if (!values.eventTypes.length) errors.push({ path: 'eventTypes', message: 'Select at least one event type.' });
  if (values.headers.invalidLine !== undefined) errors.push({ path: 'headers', message: `Write each header as "Name: value" ("${values.headers.invalidLine}" has no colon).` });
  return errors;
}

async function onSubmitEndpoint(event) {
  event.preventDefault();
  clearFieldErrors();
  const values = readForm();
  const local = validateLocally(values);
  if (local.length) return showFieldErrors(local);

  await busy($('save-endpoint'), async () => {
    try {
      if (state.editingId) {
        await api('PATCH', `/v1/endpoints/${enc(state.editingId)}`, values);
        resetForm();
        announce('Endpoint updated.');
      } else {
        const body = { url: values.url, eventTypes: values.eventTypes };
        if (values.description) body.description = values.description;
        for (const field of LIMIT_FIELDS) if (values[field] !== null) body[field] = values[field];
        if (Object.keys(values.headers).length) body.headers = values.headers;
        const created = await api('POST', '/v1/endpoints', body);
        resetForm();
        showSecretNotice(created.secret);
        announce('Endpoint added. Copy its signing secret now.');
      }
      await refreshEndpoints();
    } catch (err) {
      if (err.status === 401) return;
      if (err.status === 400 && err.errors.length) showFieldErrors(err.errors);
      else showFormError(err.detail);
    }
  });
}

function startEdit(endpoint) {
  resetForm();
  state.editingId = endpoint.id;
  $('endpoint-url').value = endpoint.url;
  $('endpoint-description').value = endpoint.description || '';
  $('endpoint-rate-limit').value = endpoint.rateLimitPerSecond ?? '';
  $('endpoint-max-in-flight').value = endpoint.maxInFlight ?? '';
  $('endpoint-headers').value = headersText(endpoint.headers);
  for (const box of eventTypeInputs()) box.checked = endpoint.eventTypes.includes(box.value);
  $('form-title').textContent = 'Edit endpoint';
  $('save-endpoint').textContent = 'Save changes';
  $('cancel-edit').hidden = false;
  $('endpoint-form').classList.add('is-editing');
  $('endpoint-form').scrollIntoView({ block: 'start', behavior: 'smooth' });
  $('form-title').focus({ preventScroll: true });
}

function resetForm() {
  state.editingId = null;
  $('endpoint-form').reset();
  clearFieldErrors();
  $('form-title').textContent = 'Add an endpoint';
  $('save-endpoint').textContent = 'Add endpoint';
  $('cancel-edit').hidden = true;
  $('endpoint-form').classList.remove('is-editing');
}

function showSecretNotice(secret) {
  $('secret-notice-value').textContent = secret;
  $('secret-notice').hidden = false;
  $('secret-notice-title').focus();
}

function hideSecretNotice() {
  $('secret-notice-value').textContent = '';
  $('secret-notice').hidden = true;
  $('endpoints-title').focus();
}

// ---------------------------------------------------------------------------
// Endpoint cards

async function refreshEndpoints() {
  const { data } = await api('GET', '/v1/endpoints');
  state.endpoints = data;
  renderEndpoints();
  renderEndpointFilter();
}

const endpointById = (id) => state.endpoints.find((ep) => ep.id === id);
const cardFor = (id) => [...$('endpoint-list').children].find((card) => card.dataset.endpointId === id);

/** Updates cards in place (keeps focus, revealed secrets and test results), adds new ones, drops deleted ones. */
function renderEndpoints() {
  const list = $('endpoint-list');
  const wanted = new Set(state.endpoints.map((ep) => ep.id));
  for (const card of [...list.children]) if (!wanted.has(card.dataset.endpointId)) card.remove();
  state.endpoints.forEach((ep, index) => {
    const card = cardFor(ep.id) || createCard(ep);
    fillCard(card, ep);
    if (list.children[index] !== card) list.insertBefore(card, list.children[index] || null);
  });
  $('no-endpoints').hidden = state.endpoints.length > 0;
}

let cardCounter = 0;

function createCard(endpoint) {
  const card = $('endpoint-card-template').content.firstElementChild.cloneNode(true);
  const id = endpoint.id;
  const n = ++cardCounter;
  card.dataset.endpointId = id;

  // Labels in a cloned template need unique ids to point at.
  linkLabel(card.querySelector('.test-label'), inCard(card, 'test-event-type'), `test-type-${n}`);
  linkLabel(card.querySelector('.recover-label'), inCard(card, 'recover-since'), `recover-since-${n}`);
  const recoverHelp = card.querySelector('.recover-help');
  recoverHelp.id = `recover-help-${n}`;
  inCard(card, 'recover-since').setAttribute('aria-describedby', recoverHelp.id);
  card.querySelector('.card-disabled').id = `disabled-reason-${n}`;
  linkLabel(card.querySelector('.stats-window-label'), inCard(card, 'stats-window'), `stats-window-${n}`);
  inCard(card, 'stats-window').addEventListener('change', () => loadStats(card, id));
  card.setAttribute('aria-labelledby', (card.querySelector('.card-url').id = `card-url-${n}`));

  const select = inCard(card, 'test-event-type');
  for (const et of state.eventTypes) select.append(el('option', { value: et.type, text: et.type }));
  if (endpoint.eventTypes[0]) select.value = endpoint.eventTypes[0];

  const on = (testId, handler) => inCard(card, testId).addEventListener('click', (event) => handler(event.currentTarget, endpointById(id) || endpoint, card));
  on('edit-endpoint', (_button, ep) => startEdit(ep));
  on('toggle-enabled', toggleEnabled);
  on('delete-endpoint', deleteEndpoint);
  on('reveal-secret', revealSecret);
  on('copy-secret', copyEndpointSecret);
  on('rotate-secret', rotateSecret);
  on('send-test', sendTest);
  on('recover', recoverSince);
  on('retry-pending', retryPending);
  // Free plans may still see and delete endpoints, but every other write answers 402: leave those controls out.
  if (!isPaid()) for (const node of card.querySelectorAll('.writes')) node.remove();
  if (isReadOnly()) {
    for (const node of card.querySelectorAll('.writes')) node.remove();
    for (const id of WRITE_CONTROLS) for (const node of card.querySelectorAll(`[data-testid="${id}"]`)) node.remove();
  }
  return card;
}

function linkLabel(label, control, id) {
  control.id = id;
  label.setAttribute('for', id);
}

function fillCard(card, ep) {
  inCard(card, 'endpoint-card-url').textContent = ep.url;
  const stateBadge = card.querySelector('.card-state');
  stateBadge.textContent = ep.enabled ? 'Enabled' : 'Disabled';
  stateBadge.className = `badge card-state ${ep.enabled ? 'badge-ok' : 'badge-off'}`;
  card.classList.toggle('is-disabled', !ep.enabled);

  const limits = card.querySelector('.card-limits');
  const limitParts = [];
  if (ep.rateLimitPerSecond != null) limitParts.push(`at most ${ep.rateLimitPerSecond} requests per second`);
  if (ep.maxInFlight != null) limitParts.push(`at most ${ep.maxInFlight} at once`);
  limits.textContent = limitParts.length ? `Send limits: ${limitParts.join(', ')}.` : '';
  limits.hidden = !limitParts.length;
  const description = card.querySelector('.card-description');
  description.textContent = ep.description || '';
  description.hidden = !ep.description;
  card.querySelector('.card-event-list').textContent = ep.eventTypes.join(', ');
  // Names only: values may be credentials (shown in the edit form, where they are changed).
  const headerNames = Object.keys(ep.headers || {});
  card.querySelector('.card-header-list').textContent = headerNames.join(', ');
  card.querySelector('.card-headers').hidden = !headerNames.length;
  fillHealth(card, ep.health);
  loadStats(card, ep.id);

  const reason = card.querySelector('.card-disabled');
  fillBanner(card, ep);

  const toggle = inCard(card, 'toggle-enabled'); // absent on free plans
  if (toggle) {
    // The API refuses tests and recovery for a disabled endpoint; say so instead of failing.
    inCard(card, 'send-test').disabled = !ep.enabled;
    inCard(card, 'recover').disabled = !ep.enabled;
    inCard(card, 'retry-pending').disabled = !ep.enabled;
    card.querySelector('.tools-note').hidden = ep.enabled;
    toggle.textContent = ep.enabled ? 'Disable' : 'Enable';
    if (ep.enabled) toggle.removeAttribute('aria-describedby');
    else toggle.setAttribute('aria-describedby', reason.id);
  }
}

/**
 * A banner on an endpoint that is disabled or failing: why, and what to do about it. The
 * reason paragraph (.card-disabled) also describes the Enable button of a disabled endpoint.
 */
function fillBanner(card, ep) {
  const banner = card.querySelector('.card-banner');
  const reason = card.querySelector('.card-disabled');
  const advice = card.querySelector('.card-banner-advice');
  const h = ep.health || { state: 'healthy', consecutiveFailures: 0 };
  if (!ep.enabled) {
    const when = ep.disabledAt ? ` on ${formatTime(ep.disabledAt)}` : '';
    reason.textContent = ep.disabledReason ? `Disabled${when}: ${ep.disabledReason}` : `Disabled${when}. No webhooks are sent to it.`;
    advice.textContent =
      'Nothing is sent to it, and new events are not queued for it. Fix your receiver so it answers 2xx, press Enable, then Recover from the time it stopped: that resends what failed or was cancelled and delivers the events it missed.';
  } else if (h.state !== 'healthy') {
    const last = h.lastError ? ` (last error: ${h.lastError})` : '';
    reason.textContent =
      h.state === 'failing'
        ? `Failing: ${plural(h.consecutiveFailures, 'attempt', 'attempts')} in a row failed since ${formatTime(h.since)}${last}.`
        : `Not receiving: ${plural(h.consecutiveFailures, 'attempt', 'attempts')} in a row failed${last}, so deliveries are held since ${formatTime(h.since)} and retried when a probe succeeds.`;
    advice.textContent =
      'Check that your receiver answers 2xx within the timeout. Once it does, press Retry pending now to send what is waiting at once; otherwise it is retried automatically. An endpoint that keeps failing is disabled.';
  }
  banner.hidden = ep.enabled && h.state === 'healthy';
}

const HEALTH_LABELS = { healthy: 'Healthy', failing: 'Failing', open: 'Circuit open', probing: 'Probing' };

/** The endpoint's health badge (its state in words, not only a colour) and what it means. */
function fillHealth(card, health) {
  const h = health || { state: 'healthy', consecutiveFailures: 0 };
  const badge = card.querySelector('.health-badge');
  badge.textContent = HEALTH_LABELS[h.state] || h.state;
  badge.className = `badge health-badge health-${h.state}`;
  const parts = [];
  if (h.state === 'failing') parts.push(`${h.consecutiveFailures} failed attempt${h.consecutiveFailures === 1 ? '' : 's'} in a row since ${formatTime(h.since)}.`);
  if (h.state === 'open' || h.state === 'probing') {
    parts.push(`Deliveries are held since ${formatTime(h.since)} after ${h.consecutiveFailures} failed attempts in a row.`);
    if (h.state === 'probing') parts.push('A probe request is out now.');
    else if (h.nextProbeAt) parts.push(`Next probe: ${formatTime(h.nextProbeAt)}.`);
  }
  if (h.state !== 'healthy' && h.lastError) parts.push(`Last error: ${h.lastError}`);
  card.querySelector('.card-health-detail').textContent = parts.join(' ');
}

/** The card's stats for its chosen period (stats.js draws them); a failure leaves the last figures. */
async function loadStats(card, endpointId) {
  const period = inCard(card, 'stats-window').value || '24h';
  try {
    const stats = await api('GET', `/v1/endpoints/${enc(endpointId)}/stats?window=${enc(period)}`);
    if (inCard(card, 'stats-window').value === period) renderEndpointStats(card, stats);
  } catch (err) {
    if (err.status !== 401) card.querySelector('.card-stats').dataset.error = err.detail || 'unavailable';
  }
}

async function toggleEnabled(button, ep) {
  await busy(button, async () => {
    try {
      await api('PATCH', `/v1/endpoints/${enc(ep.id)}`, { enabled: !ep.enabled });
      announce(ep.enabled ? 'Endpoint disabled. Its pending deliveries were cancelled.' : 'Endpoint enabled.');
      await refreshEndpoints();
      await refreshLogAndDetails();
    } catch (err) {
      reportError(err);
    }
  });
}

async function deleteEndpoint(button, ep) {
  const confirmed = await confirmAction({
    title: 'Delete this endpoint?',
    body: `${ep.url} will stop receiving webhooks and its pending deliveries are cancelled. Its delivery history stays in the log.`,
    confirmLabel: 'Delete endpoint',
    testId: 'confirm-delete',
  });
  if (!confirmed) return;
  try {
    await api('DELETE', `/v1/endpoints/${enc(ep.id)}`);
    if (state.editingId === ep.id) resetForm();
    announce('Endpoint deleted.');
    await refreshEndpoints();
    $('endpoints-title').focus();
    await refreshLogAndDetails();
  } catch (err) {
    reportError(err);
  }
}

function showSecretInCard(card, secret) {
  const code = inCard(card, 'secret-value');
  code.textContent = secret;
  code.classList.add('is-revealed');
  inCard(card, 'reveal-secret').textContent = 'Hide';
}

function hideSecretInCard(card) {
  const code = inCard(card, 'secret-value');
  code.textContent = MASKED_SECRET;
  code.classList.remove('is-revealed');
  inCard(card, 'reveal-secret').textContent = 'Reveal';
}

async function revealSecret(button, ep, card) {
  if (inCard(card, 'secret-value').classList.contains('is-revealed')) return hideSecretInCard(card);
  await busy(button, async () => {
    try {
      const { secret } = await api('GET', `/v1/endpoints/${enc(ep.id)}/secret`);
      showSecretInCard(card, secret);
    } catch (err) {
      reportError(err);
    }
  });
}

async function copyEndpointSecret(button, ep) {
  await busy(button, async () => {
    try {
      // Always fetch: the secret may have been rotated since it was revealed.
      const { secret } = await api('GET', `/v1/endpoints/${enc(ep.id)}/secret`);
      await copySecret(secret);
    } catch (err) {
      reportError(err);
    }
  });
}

async function rotateSecret(button, ep, card) {
  const confirmed = await confirmAction({
    title: 'Rotate the signing secret?',
    body: 'A new secret is issued now. For the next 24 hours the old secret keeps signing too (webhooks carry both signatures), so you have time to update your receiver. After that only the new secret works.',
    confirmLabel: 'Rotate secret',
    testId: 'confirm-rotate',
  });
  if (!confirmed) return;
  await busy(button, async () => {
    try {
      const { secret } = await api('POST', `/v1/endpoints/${enc(ep.id)}/secret/rotate`);
      showSecretInCard(card, secret);
      announce('New signing secret issued. The old one keeps signing for 24 hours.');
    } catch (err) {
      reportError(err);
    }
  });
}

// ---------------------------------------------------------------------------
// Test events and recovery

/** Polls a delivery until `done(delivery)` or the time runs out; returns the last answer. */
async function pollDelivery(id, done) {
  const deadline = Date.now() + POLL_TIMEOUT_MS;
  for (;;) {
    const delivery = await api('GET', `/v1/deliveries/${enc(id)}`);
    if (done(delivery) || Date.now() >= deadline) return delivery;
    await sleep(POLL_INTERVAL_MS);
  }
}

async function sendTest(button, ep) {
  const card = cardFor(ep.id);
  const eventType = inCard(card, 'test-event-type').value;
  const result = () => inCard(cardFor(ep.id) || card, 'test-result');
  await busy(button, async () => {
    renderTestPending(result(), `Sending a ${eventType} test event…`);
    try {
      const { deliveryId } = await api('POST', `/v1/endpoints/${enc(ep.id)}/test`, { eventType });
      const delivery = await pollDelivery(deliveryId, (d) => d.attempts.length > 0 || d.status !== 'pending');
      const summary = renderTestResult(result(), delivery);
      announce(summary);
      refreshLogAndDetails().catch(reportError);
    } catch (err) {
      renderTestPending(result(), err.detail, true);
      reportError(err);
    }
  });
}

function renderTestPending(box, text, isError = false) {
  box.hidden = false;
  box.className = `test-result${isError ? ' is-failed' : ''}`;
  box.removeAttribute('data-status');
  box.replaceChildren(el('p', { text }));
}

/** Shows the outcome of a test delivery and returns a one-line summary for the live region. */
function renderTestResult(box, d) {
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

async function retryPending(button, ep) {
  await busy(button, async () => {
    try {
      const { deliveryIds } = await api('POST', `/v1/endpoints/${enc(ep.id)}/retry`);
      announce(deliveryIds.length ? `Retrying ${plural(deliveryIds.length, 'pending delivery', 'pending deliveries')} now.` : 'No pending deliveries; nothing to retry.');
      await refreshEndpoints();
      await refreshLogAndDetails();
    } catch (err) {
      reportError(err);
    }
  });
}

async function recoverSince(button, ep, card) {
  const input = inCard(card, 'recover-since');
  const since = input.value ? new Date(input.value) : null; // datetime-local is local time
  if (!since || Number.isNaN(since.getTime())) {
    input.setAttribute('aria-invalid', 'true');
    input.focus();
    return announce('Choose the date and time to recover failed deliveries from.', true);
  }
  input.removeAttribute('aria-invalid');
  await busy(button, async () => {
    try {
      const { deliveryIds, recovered, more } = await api('POST', `/v1/endpoints/${enc(ep.id)}/recover`, { since: since.toISOString() });
      const parts = [];
      if (recovered.undeliverable) parts.push(plural(recovered.undeliverable, 'undeliverable delivery', 'undeliverable deliveries'));
      if (recovered.cancelled) parts.push(plural(recovered.cancelled, 'cancelled delivery', 'cancelled deliveries'));
      if (recovered.missing) parts.push(plural(recovered.missing, 'missed event', 'missed events'));
      announce(
        deliveryIds.length
          ? `Recovered ${parts.join(', ')} since ${since.toLocaleString()}.${more ? ' There is more: press Recover again.' : ''}`
          : `Nothing failed, was cancelled or was missed since ${since.toLocaleString()}; nothing was resent.`,
      );
      await refreshLogAndDetails();
    } catch (err) {
      reportError(err);
    }
  });
}

// ---------------------------------------------------------------------------
// Delivery log

function renderFilterOptions(select, options) {
  const current = select.value;
  select.replaceChildren(el('option', { value: '', text: 'All' }), ...options.map(([value, text]) => el('option', { value, text })));
  // Keep the chosen filter if it still exists.
  select.value = options.some(([value]) => value === current) ? current : '';
}

function renderEndpointFilter() {
  renderFilterOptions(
    $('filter-endpoint'),
    state.endpoints.map((ep) => [ep.id, ep.url]),
  );
}

function endpointLabel(endpointId, withId = false) {
  const ep = endpointById(endpointId);
  if (ep) return ep.url;
  return withId ? `Deleted endpoint (${endpointId})` : 'Deleted endpoint';
}

function logQuery() {
  const params = new URLSearchParams({ limit: String(PAGE_SIZE) });
  const filters = { status: 'filter-status', endpointId: 'filter-endpoint', eventType: 'filter-event-type' };
  for (const [name, id] of Object.entries(filters)) if ($(id).value) params.set(name, $(id).value);
  if (state.log.cursor) params.set('cursor', state.log.cursor);
  return params.toString();
}

async function loadLog() {
  const page = await api('GET', `/v1/deliveries?${logQuery()}`);
  state.log.nextCursor = page.nextCursor;
  renderLog(page.data);
}

function renderLog(deliveries) {
  const rows = deliveries.map(deliveryRow);
  $('delivery-rows').replaceChildren(...rows);
  const filtered = ['filter-status', 'filter-endpoint', 'filter-event-type'].some((id) => $(id).value);
  $('no-deliveries').textContent = filtered ? 'No deliveries match these filters.' : 'No deliveries yet.';
  $('no-deliveries').hidden = deliveries.length > 0;
  $('newer-page').disabled = state.log.olderStack.length === 0;
  $('older-page').disabled = !state.log.nextCursor;
  $('page-info').textContent = `Page ${state.log.page}`;
}

function statusBadge(status) {
  return el('span', { className: `badge status-${status}`, text: status });
}

function deliveryRow(d) {
  const open = el('button', { type: 'button', className: 'row-button' }, [
    formatTime(d.createdAt),
    el('span', { className: 'visually-hidden', text: ` — ${d.eventType}, ${d.status}: show details` }),
  ]);
  open.addEventListener('click', (event) => {
    event.stopPropagation();
    openDetails(d.id, open);
  });
  const row = el('tr', { 'data-testid': 'delivery-row', 'data-delivery-id': d.id, 'data-status': d.status, className: 'delivery-row' }, [
    el('td', {}, [open]),
    el('td', { className: 'mono', text: d.eventType }),
    el('td', { className: 'cell-url', text: endpointLabel(d.endpointId) }),
    el('td', { 'data-testid': 'delivery-status' }, [statusBadge(d.status)]),
    el('td', { className: 'num', text: String(d.attemptCount) }),
  ]);
  // The whole row is a mouse target; the button in its first cell is the keyboard one.
  row.addEventListener('click', () => openDetails(d.id, open));
  if (d.id === state.details.id) row.classList.add('is-selected');
  return row;
}

async function onFilterChange() {
  state.log = { cursor: null, olderStack: [], nextCursor: null, page: 1 };
  try {
    await loadLog();
  } catch (err) {
    reportError(err);
  }
}

async function goOlder() {
  if (!state.log.nextCursor) return;
  state.log.olderStack.push(state.log.cursor);
  state.log.cursor = state.log.nextCursor;
  state.log.page += 1;
  try {
    await loadLog();
  } catch (err) {
    reportError(err);
  }
}

async function goNewer() {
  if (!state.log.olderStack.length) return;
  state.log.cursor = state.log.olderStack.pop();
  state.log.page -= 1;
  try {
    await loadLog();
  } catch (err) {
    reportError(err);
  }
}

async function refreshLog(button) {
  await busy(button, async () => {
    try {
      await refreshLogAndDetails();
      announce('Delivery log refreshed.');
    } catch (err) {
      reportError(err);
    }
  });
}

// ---------------------------------------------------------------------------
// Delivery details

let detailsOpener = null;

async function openDetails(id, opener) {
  try {
    const delivery = await api('GET', `/v1/deliveries/${enc(id)}`);
    detailsOpener = opener || null;
    renderDetails(delivery);
    $('delivery-details').hidden = false;
    $('details-title').focus();
  } catch (err) {
    reportError(err);
  }
}

/** Reloads the log page and, if a delivery is open, its details (actions change both). */
async function refreshLogAndDetails() {
  await loadLog();
  if (state.details.id && !$('delivery-details').hidden) {
    renderDetails(await api('GET', `/v1/deliveries/${enc(state.details.id)}`));
  }
}

function closeDetails() {
  $('delivery-details').hidden = true;
  const id = state.details.id;
  state.details.id = null;
  for (const row of document.querySelectorAll('.delivery-row.is-selected')) row.classList.remove('is-selected');
  // Back to the row that opened it, if it is still on screen.
  const row = [...document.querySelectorAll('.delivery-row')].find((r) => r.dataset.deliveryId === id);
  const target = row ? row.querySelector('.row-button') : detailsOpener && detailsOpener.isConnected ? detailsOpener : $('log-title');
  target.focus();
}

const HELD_WHY = {
  circuit_open: "the endpoint's circuit is open, no request is made while it stays open",
  probing: 'a probe request to the endpoint is out, no request is made while it stays open',
  throttled: 'the endpoint answered 429 Too Many Requests and is paused for its Retry-After',
  rate_limited: "the endpoint's rate limit: it goes out at that pace",
  max_in_flight: "the endpoint's limit of concurrent requests: it goes out as requests finish",
};

/** A held delivery (open circuit, 429 pause or send limits): why, since when, and until when. */
function heldText(held) {
  const why = HELD_WHY[held.reason] || held.reason;
  const until = held.until ? ` until ${formatTime(held.until)} (${relativeTime(held.until)})` : '';
  return `Held${until}: ${why} (held since ${formatTime(held.since)}).`;
}

function setFact(id, value) {
  const dd = $(id);
  const dt = $(`${id}-label`);
  dd.textContent = value || '';
  dd.hidden = !value;
  if (dt) dt.hidden = !value;
}

function renderDetails(d) {
  state.details.id = d.id;
  state.details.attempts = d.attempts.length;
  for (const row of document.querySelectorAll('.delivery-row')) row.classList.toggle('is-selected', row.dataset.deliveryId === d.id);

  $('details-title').textContent = `Delivery of ${d.eventType}`;
  const status = $('details-status');
  status.textContent = d.status;
  status.className = `badge status-${d.status}`;
  $('details-event-type').textContent = d.eventType;
  $('details-endpoint').textContent = endpointLabel(d.endpointId, true);
  $('details-created').textContent = formatTime(d.createdAt);
  $('details-id').textContent = d.id;
  setFact('details-delivered', d.deliveredAt ? formatTime(d.deliveredAt) : '');
  setFact('next-retry', d.status === 'pending' && d.nextAttemptAt ? `${formatTime(d.nextAttemptAt)} (${relativeTime(d.nextAttemptAt)})` : '');
  setFact('details-reason', d.finishedReason || '');
  setFact('details-held', d.held ? heldText(d.held) : '');

  const resend = $('resend');
  resend.disabled = d.status === 'pending' || !isPaid();
  $('resend-help').textContent = !isPaid() ? 'Resending needs a paid plan.' : 'A delivery can be resent once it has finished.';
  $('resend-help').hidden = !resend.disabled;
  resend.setAttribute('aria-describedby', 'resend-help');
  // Only a pending delivery can be retried now (and only on a paid plan).
  $('retry-now').hidden = d.status !== 'pending' || !isPaid();
  $('retry-now-help').hidden = $('retry-now').hidden;
  if (isReadOnly()) {
    resend.hidden = true;
    $('resend-help').hidden = true;
    $('retry-now').hidden = true;
    $('retry-now-help').hidden = true;
  }

  const link = $('temporal-link');
  if (d.workflowUrl) link.setAttribute('href', d.workflowUrl);
  else link.removeAttribute('href');
  link.hidden = !d.workflowUrl;

  renderAttempts(d.attempts);
  $('payload').textContent = prettyJson(d.payload);
}

function renderAttempts(attempts) {
  const rows = attempts.map((a) =>
    el('tr', { 'data-testid': 'attempt-row' }, [
      el('td', { className: 'num', text: String(a.attempt) }),
      el('td', { text: formatTime(a.startedAt) }),
      el('td', { className: 'num', text: a.statusCode !== undefined ? String(a.statusCode) : '—' }),
      el('td', { className: 'num', text: String(a.durationMs) }),
      el('td', { text: a.error || '' }),
      el('td', { className: 'cell-response' }, [el('code', { text: excerpt(a.responseBody || '') })]),
    ]),
  );
  $('attempt-rows').replaceChildren(...rows);
  $('no-attempts').hidden = attempts.length > 0;
}

function prettyJson(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text || '';
  }
}

function resendSummary(d) {
  const last = d.attempts[d.attempts.length - 1];
  if (d.status === 'delivered') return 'Resent: delivered.';
  if (d.status === 'pending' && last) {
    const code = last.statusCode !== undefined ? `HTTP ${last.statusCode}` : last.error;
    return `Resent, but the attempt failed (${code}).${d.nextAttemptAt ? ` Next retry at ${formatTime(d.nextAttemptAt)}.` : ''}`;
  }
  return d.status === 'pending' ? 'Resend started; no attempt yet.' : `Resent: ${d.status}.`;
}

async function retryNow(button) {
  const id = state.details.id;
  if (!id) return;
  await busy(button, async () => {
    try {
      const attemptsBefore = state.details.attempts;
      await api('POST', `/v1/deliveries/${enc(id)}/retry`);
      announce('Retrying now.');
      const delivery = await pollDelivery(id, (d) => d.status !== 'pending' || d.attempts.length > attemptsBefore);
      if (state.details.id === id) renderDetails(delivery);
      announce(delivery.status === 'delivered' ? 'Delivered.' : resendSummary(delivery));
      await loadLog();
    } catch (err) {
      reportError(err);
    }
  });
}

async function resendDelivery(button) {
  const id = state.details.id;
  if (!id) return;
  await busy(button, async () => {
    try {
      const attemptsBefore = state.details.attempts;
      await api('POST', `/v1/deliveries/${enc(id)}/resend`);
      announce('Resend started.');
      // Wait for the new series' first attempt so the panel shows its outcome.
      const delivery = await pollDelivery(id, (d) => d.attempts.length > attemptsBefore);
      if (state.details.id === id) renderDetails(delivery);
      announce(resendSummary(delivery));
      await loadLog();
    } catch (err) {
      reportError(err);
    }
  });
}

// ---------------------------------------------------------------------------
// Start-up

/** Free plans get the upgrade message instead of the form (removed, not just hidden). */
function applyPlan() {
  if (isReadOnly()) {
    $('endpoint-form').remove();
    $('read-only-message').hidden = false;
  } else if (isPaid()) {
    $('endpoint-form').hidden = false;
    renderEventTypeOptions();
  } else {
    $('endpoint-form').remove();
    $('upgrade-message').hidden = false;
  }
}

function wireEvents() {
  $('endpoint-form').addEventListener('submit', onSubmitEndpoint);
  $('cancel-edit').addEventListener('click', () => {
    resetForm();
    announce('Edit cancelled.');
    $('endpoints-title').focus();
  });
  $('secret-notice-copy').addEventListener('click', () => copySecret($('secret-notice-value').textContent));
  $('secret-notice-close').addEventListener('click', hideSecretNotice);
  $('toast-close').addEventListener('click', dismissToast);
  for (const id of ['filter-status', 'filter-endpoint', 'filter-event-type']) $(id).addEventListener('change', onFilterChange);
  $('log-filters').addEventListener('submit', (event) => event.preventDefault());
  $('refresh-log').addEventListener('click', (event) => refreshLog(event.currentTarget));
  $('older-page').addEventListener('click', goOlder);
  $('newer-page').addEventListener('click', goNewer);
  $('close-details').addEventListener('click', closeDetails);
  $('resend').addEventListener('click', (event) => resendDelivery(event.currentTarget));
  $('retry-now').addEventListener('click', (event) => retryNow(event.currentTarget));
  $('delivery-details').addEventListener('keydown', (event) => {
    if (event.key === 'Escape') closeDetails();
  });
}

/** A new link opened in the same tab changes only the fragment: start over with its token. */
function onHashChange() {
  if (!new URLSearchParams(location.hash.replace(/^#/, '')).get('token')) return;
  readToken();
  location.reload();
}

async function start() {
  window.addEventListener('hashchange', onHashChange);
  state.token = readToken();
  if (!state.token) return showAuthError();
  wireEvents();
  try {
    const [account, eventTypes, endpoints] = await Promise.all([api('GET', '/v1/account'), api('GET', '/v1/event-types'), api('GET', '/v1/endpoints')]);
    state.account = account;
    state.eventTypes = eventTypes.data;
    state.endpoints = endpoints.data;
    $('account-name').textContent = account.name;
    $('account-line').hidden = false;
    applyPlan();
    renderFilterOptions(
      $('filter-event-type'),
      state.eventTypes.map((et) => [et.type, et.type]),
    );
    renderEndpoints();
    renderEndpointFilter();
    $('loading').hidden = true;
    $('main').hidden = false;
    await loadLog();
  } catch (err) {
    if (err.status === 401) return;
    $('loading').textContent = `Could not load your webhook settings: ${err.detail}`;
    $('loading').classList.add('is-error');
    $('loading').setAttribute('role', 'alert');
  }
}

start();
