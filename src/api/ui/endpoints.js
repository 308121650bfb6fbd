// Webhook settings page: the endpoint form (add and edit), the endpoint cards (settings, health,
// stats, secret with verification snippets, tools) and their actions.
import {
  $,
  MASKED_SECRET,
  state,
  inCard,
  isPaid,
  isReadOnly,
  WRITE_CONTROLS,
  el,
  formatTime,
  plural,
  api,
  enc,
  announce,
  reportError,
  busy,
  confirmAction,
  copySecret,
  copyText,
  pollDelivery,
  renderTestPending,
  renderTestResult,
  endpointById,
} from './core.js';
import { renderEndpointFilter, refreshLogAndDetails } from './log.js';
import { goToOverview } from './app.js'; // portal.js, served as app.js (the page's entry)
import { renderSnippets } from './snippets.js';
import { renderEndpointStats } from './stats.js';
import { renderCatalogTargets } from './catalog.js';

// ---------------------------------------------------------------------------
// Endpoint form (add and edit share one form)

export const FIELD_IDS = {
  url: 'endpoint-url',
  description: 'endpoint-description',
  rateLimitPerSecond: 'endpoint-rate-limit',
  maxInFlight: 'endpoint-max-in-flight',
  headers: 'endpoint-headers',
};
export const LIMIT_FIELDS = ['rateLimitPerSecond', 'maxInFlight'];
export const HELP_IDS = { url: 'endpoint-url-help', eventTypes: 'event-types-help', headers: 'endpoint-headers-help' };

export function renderEventTypeOptions() {
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

export function eventTypeInputs() {
  return [...$('event-type-options').querySelectorAll('input[type="checkbox"]')];
}

export function clearFieldErrors() {
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
export function markField(field, invalid) {
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
export function showFieldErrors(errors) {
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

export function showFormError(text) {
  $('form-error').textContent = text;
  $('form-error').hidden = false;
}

export function readForm() {
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
export function parseHeaders(text) {
  const headers = {};
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const colon = line.indexOf(':');
    if (colon <= 0) return { invalidLine: line.trim() };
    headers[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
  }
  return headers;
}

export function headersText(headers) {
  return Object.entries(headers || {})
    .map(([name, value]) => `${name}: ${value}`)
    .join('\n');
}

export function limitValue(raw) {
  const text = raw.trim();
  if (!text) return null;
  const n = Number(text);
  return Number.isFinite(n) ? n : text;
}

/** Catches the two obvious mistakes before a round trip; the server checks everything else. */
export function validateLocally(values) {
  const errors = [];
  if (!values.url) errors.push({ path: 'url', message: 'Enter the URL of your endpoint.' });
  if (!values.eventTypes.length) errors.push({ path: 'eventTypes', message: 'Select at least one event type.' });
  if (values.headers.invalidLine !== undefined) errors.push({ path: 'headers', message: `Write each header as "Name: value" ("${values.headers.invalidLine}" has no colon).` });
  return errors;
}

export async function onSubmitEndpoint(event) {
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

export function startEdit(endpoint) {
  // The form is on the overview; an endpoint's page goes back there to edit.
  if (state.view.name !== 'overview') goToOverview({ focus: false });
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

export function resetForm() {
  state.editingId = null;
  $('endpoint-form').reset();
  clearFieldErrors();
  $('form-title').textContent = 'Add an endpoint';
  $('save-endpoint').textContent = 'Add endpoint';
  $('cancel-edit').hidden = true;
  $('endpoint-form').classList.remove('is-editing');
}

export function showSecretNotice(secret) {
  $('secret-notice-value').textContent = secret;
  $('secret-notice').hidden = false;
  $('secret-notice-title').focus();
}

export function hideSecretNotice() {
  $('secret-notice-value').textContent = '';
  $('secret-notice').hidden = true;
  $('endpoints-title').focus();
}

// ---------------------------------------------------------------------------
// Endpoint cards

export async function refreshEndpoints() {
  const { data } = await api('GET', '/v1/endpoints');
  state.endpoints = data;
  renderEndpoints();
  renderEndpointFilter();
}

export const cardFor = (id) => [...$('endpoint-list').children].find((card) => card.dataset.endpointId === id);

/** Updates cards in place (keeps focus, revealed secrets and test results), adds new ones, drops deleted ones. */
export function renderEndpoints() {
  const list = $('endpoint-list');
  const wanted = new Set(state.endpoints.map((ep) => ep.id));
  for (const card of [...list.children]) if (!wanted.has(card.dataset.endpointId)) card.remove();
  state.endpoints.forEach((ep, index) => {
    const card = cardFor(ep.id) || createCard(ep);
    fillCard(card, ep);
    if (list.children[index] !== card) list.insertBefore(card, list.children[index] || null);
  });
  applyEndpointView();
  renderCatalogTargets();
}

/** On an endpoint's page only its card shows; on the overview every card. */
export function applyEndpointView() {
  const page = state.view.name === 'endpoint' ? state.view.endpointId : null;
  for (const card of $('endpoint-list').children) card.hidden = page !== null && card.dataset.endpointId !== page;
  $('no-endpoints').hidden = page !== null || state.endpoints.length > 0;
  $('endpoint-missing').hidden = page === null || Boolean(endpointById(page));
}

let cardCounter = 0;

export function createCard(endpoint) {
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
  inCard(card, 'endpoint-page-link').setAttribute('href', `#/endpoints/${enc(id)}`);
  const snippets = card.querySelector('.snippets-body');
  snippets.id = `snippets-${n}`;
  renderSnippets(snippets, async (code, label) => {
    if (await copyText(code)) announce(`${label} verification code copied to the clipboard.`);
    else announce('Copying is not available here. Select the code and copy it by hand.', true);
  });

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

export function linkLabel(label, control, id) {
  control.id = id;
  label.setAttribute('for', id);
}

export function fillCard(card, ep) {
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
export function fillBanner(card, ep) {
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

export const HEALTH_LABELS = { healthy: 'Healthy', failing: 'Failing', open: 'Circuit open', probing: 'Probing' };

/** The endpoint's health badge (its state in words, not only a colour) and what it means. */
export function fillHealth(card, health) {
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
export async function loadStats(card, endpointId) {
  const period = inCard(card, 'stats-window').value || '24h';
  try {
    const stats = await api('GET', `/v1/endpoints/${enc(endpointId)}/stats?window=${enc(period)}`);
    if (inCard(card, 'stats-window').value === period) renderEndpointStats(card, stats);
  } catch (err) {
    if (err.status !== 401) card.querySelector('.card-stats').dataset.error = err.detail || 'unavailable';
  }
}

export async function toggleEnabled(button, ep) {
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

export async function deleteEndpoint(button, ep) {
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
    if (state.view.name === 'endpoint') goToOverview({ focus: false });
    await refreshEndpoints();
    $('endpoints-title').focus();
    await refreshLogAndDetails();
  } catch (err) {
    reportError(err);
  }
}

export function showSecretInCard(card, secret) {
  const code = inCard(card, 'secret-value');
  code.textContent = secret;
  code.classList.add('is-revealed');
  inCard(card, 'reveal-secret').textContent = 'Hide';
}

export function hideSecretInCard(card) {
  const code = inCard(card, 'secret-value');
  code.textContent = MASKED_SECRET;
  code.classList.remove('is-revealed');
  inCard(card, 'reveal-secret').textContent = 'Reveal';
}

export async function revealSecret(button, ep, card) {
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

export async function copyEndpointSecret(button, ep) {
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

export async function rotateSecret(button, ep, card) {
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

export async function sendTest(button, ep) {
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

export async function retryPending(button, ep) {
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

export async function recoverSince(button, ep, card) {
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
          ? `Recovered ${parts.join(', ')} since ${formatTime(since.toISOString())}.${more ? ' There is more: press Recover again.' : ''}`
          : `Nothing failed, was cancelled or was missed since ${formatTime(since.toISOString())}; nothing was resent.`,
      );
      await refreshLogAndDetails();
    } catch (err) {
      reportError(err);
    }
  });
}

// ---------------------------------------------------------------------------
