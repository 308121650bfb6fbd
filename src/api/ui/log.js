// Webhook settings page: the delivery log (filters, date range, id search, paging, auto-refresh
// while deliveries are pending, bulk resend of the filtered set) and a delivery's details.
import {
  $,
  PAGE_SIZE,
  state,
  isPaid,
  isReadOnly,
  el,
  formatTime,
  timeEl,
  zoneName,
  relativeTime,
  excerpt,
  plural,
  api,
  enc,
  announce,
  reportError,
  busy,
  confirmAction,
  pollDelivery,
  endpointLabel,
} from './core.js';

/** While a shown delivery is pending and auto-refresh is on, the page reloads every this often. */
export const AUTO_REFRESH_MS = 5000;
const FILTER_SELECTS = ['filter-status', 'filter-endpoint', 'filter-event-type'];
const LOG_FIELDS = { since: 'filter-since', until: 'filter-until', search: 'filter-search' };

export function renderFilterOptions(select, options) {
  const current = select.value;
  select.replaceChildren(el('option', { value: '', text: 'All' }), ...options.map(([value, text]) => el('option', { value, text })));
  // Keep the chosen filter if it still exists.
  select.value = options.some(([value]) => value === current) ? current : '';
}

export function renderEndpointFilter() {
  const select = $('filter-endpoint');
  renderFilterOptions(
    select,
    state.endpoints.map((ep) => [ep.id, ep.url]),
  );
  // On an endpoint's page the log is that endpoint's.
  if (state.view.name === 'endpoint') select.value = state.view.endpointId;
}

/** A datetime-local value (the browser's zone) as an ISO instant, or null when empty; undefined when unreadable. */
function localInput(id) {
  const raw = $(id).value;
  if (!raw) return null;
  const date = new Date(raw);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/** The search box: a delivery id (dlv_…) or an event id (evt_…); anything else is refused before a round trip. */
function searchParam() {
  // Pasted ids often carry white space or come in capitals: the API takes them exactly.
  const text = $('filter-search').value.trim().toLowerCase();
  if (!text) return null;
  if (/^dlv_/i.test(text)) return ['deliveryId', text];
  if (/^evt_/i.test(text)) return ['eventId', text];
  return undefined;
}

/** The log's current filter as query parameters (no cursor, no limit), or field errors. */
export function currentFilter() {
  const params = new URLSearchParams();
  const errors = [];
  const filters = { status: 'filter-status', endpointId: 'filter-endpoint', eventType: 'filter-event-type' };
  for (const [name, id] of Object.entries(filters)) if ($(id).value) params.set(name, $(id).value);
  for (const name of ['since', 'until']) {
    const value = localInput(LOG_FIELDS[name]);
    if (value === undefined) errors.push({ field: name, message: 'Enter a date and time.' });
    else if (value) params.set(name, value);
  }
  if (params.get('since') && params.get('until') && Date.parse(params.get('until')) <= Date.parse(params.get('since')))
    errors.push({ field: 'until', message: 'Choose a time later than From.' });
  const search = searchParam();
  if (search === undefined) errors.push({ field: 'search', message: 'Enter a delivery id (dlv_…) or an event id (evt_…).' });
  else if (search) params.set(search[0], search[1]);
  return { params, errors };
}

function logQuery(params) {
  const query = new URLSearchParams(params);
  query.set('limit', String(PAGE_SIZE));
  if (state.log.cursor) query.set('cursor', state.log.cursor);
  return query.toString();
}

/** Shows errors of the log's own fields (local or a 400's `query.since` …) next to them; [] clears them all. */
function showLogErrors(errors) {
  for (const [field, id] of Object.entries(LOG_FIELDS)) {
    const mine = errors.filter((e) => e.field === field).map((e) => e.message);
    const message = $(`filter-error-${field}`);
    message.textContent = mine.join(' ');
    message.hidden = !mine.length;
    if (mine.length) {
      $(id).setAttribute('aria-invalid', 'true');
      $(id).setAttribute('aria-describedby', message.id);
    } else {
      $(id).removeAttribute('aria-invalid');
      $(id).removeAttribute('aria-describedby');
    }
  }
}

/** The server's names for the log's fields (query.deliveryId → the search box). */
const FIELD_OF_PARAM = { since: 'since', until: 'until', eventId: 'search', deliveryId: 'search' };

export async function loadLog() {
  const { params, errors } = currentFilter();
  showLogErrors(errors);
  if (errors.length) throw Object.assign(new Error(errors[0].message), { detail: 'Fix the highlighted filter to see deliveries.', handled: true });
  let page;
  try {
    page = await api('GET', `/v1/deliveries?${logQuery(params)}`);
  } catch (err) {
    const fieldErrors = (err.errors || []).map((e) => ({ field: FIELD_OF_PARAM[String(e.path).replace(/^query\./, '')], message: `${e.message}.` })).filter((e) => e.field);
    if (err.status === 400 && fieldErrors.length) showLogErrors(fieldErrors);
    throw err;
  }
  state.log.nextCursor = page.nextCursor;
  state.log.shown = page.data;
  renderLog(page.data);
  renderBulkResend();
  scheduleAutoRefresh();
}

export function isFiltered() {
  return FILTER_SELECTS.some((id) => $(id).value && !(id === 'filter-endpoint' && state.view.name === 'endpoint')) || Object.values(LOG_FIELDS).some((id) => $(id).value.trim());
}

export function renderLog(deliveries) {
  // Re-rendering (auto-refresh) must not lose the keyboard focus of a row.
  const focused = document.activeElement && document.activeElement.closest ? document.activeElement.closest('.delivery-row') : null;
  const focusedId = focused ? focused.dataset.deliveryId : null;
  const rows = deliveries.map(deliveryRow);
  $('delivery-rows').replaceChildren(...rows);
  if (focusedId) {
    const again = rows.find((r) => r.dataset.deliveryId === focusedId);
    if (again) again.querySelector('.row-button').focus({ preventScroll: true });
  }
  $('no-deliveries').textContent = isFiltered()
    ? 'No deliveries match these filters.'
    : state.view.name === 'endpoint'
      ? 'No deliveries to this endpoint yet.'
      : 'No deliveries yet.';
  $('no-deliveries').hidden = deliveries.length > 0;
  $('newer-page').disabled = state.log.olderStack.length === 0;
  $('older-page').disabled = !state.log.nextCursor;
  $('page-info').textContent = `Page ${state.log.page}`;
}

export function statusBadge(status) {
  return el('span', { className: `badge status-${status}`, text: status });
}

const testBadge = () =>
  el('span', { className: 'badge badge-test', 'data-testid': 'test-badge', title: 'Sent by "Send test" or "Send example", not by a real event', text: 'Test' });

export function deliveryRow(d) {
  const open = el('button', { type: 'button', className: 'row-button' }, [
    timeEl(d.createdAt),
    el('span', { className: 'visually-hidden', text: ` — ${d.test ? 'test ' : ''}${d.eventType}, ${d.status}: show details` }),
  ]);
  open.addEventListener('click', (event) => {
    event.stopPropagation();
    openDetails(d.id, open);
  });
  const label = (text) => ({ 'data-label': text });
  const row = el('tr', { 'data-testid': 'delivery-row', 'data-delivery-id': d.id, 'data-status': d.status, 'data-test': String(Boolean(d.test)), className: 'delivery-row' }, [
    el('td', { ...label('Created'), className: 'cell-created' }, [open]),
    el('td', { ...label('Event type'), className: 'mono cell-type' }, [d.eventType, ...(d.test ? [' ', testBadge()] : [])]),
    el('td', { ...label('Endpoint'), className: 'cell-url', text: endpointLabel(d.endpointId) }),
    el('td', { ...label('Status'), 'data-testid': 'delivery-status', className: 'cell-status' }, [statusBadge(d.status)]),
    el('td', { ...label('Attempts'), className: 'num cell-attempts', text: String(d.attemptCount) }),
  ]);
  // The whole row is a mouse target; the button in its first cell is the keyboard one.
  row.addEventListener('click', () => openDetails(d.id, open));
  if (d.id === state.details.id) row.classList.add('is-selected');
  return row;
}

/** Back to the first page with the current filters. */
export async function onFilterChange() {
  state.log = { cursor: null, olderStack: [], nextCursor: null, page: 1, shown: [] };
  try {
    await loadLog();
  } catch (err) {
    if (!err.handled && !(err.status === 400 && err.errors && err.errors.length)) reportError(err);
  }
}

export function clearFilters() {
  for (const id of FILTER_SELECTS) if (!(id === 'filter-endpoint' && state.view.name === 'endpoint')) $(id).value = '';
  for (const id of Object.values(LOG_FIELDS)) $(id).value = '';
  return onFilterChange();
}

export async function goOlder() {
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

export async function goNewer() {
  if (!state.log.olderStack.length) return;
  state.log.cursor = state.log.olderStack.pop();
  state.log.page -= 1;
  try {
    await loadLog();
  } catch (err) {
    reportError(err);
  }
}

export async function refreshLog(button) {
  await busy(button, async () => {
    try {
      await refreshLogAndDetails();
      announce('Delivery log refreshed.');
    } catch (err) {
      if (!err.handled) reportError(err);
    }
  });
}

// ---------------------------------------------------------------------------
// Auto-refresh: only while a shown delivery is pending, the toggle is on and the tab is visible

let autoTimer = null;

function autoRefreshText(on, pending) {
  if (!on) return 'Auto-refresh is off.';
  return pending ? `Refreshing every ${AUTO_REFRESH_MS / 1000} s while deliveries are pending.` : 'Auto-refresh: no pending delivery shown.';
}

export function scheduleAutoRefresh() {
  clearTimeout(autoTimer);
  autoTimer = null;
  const on = $('auto-refresh').checked;
  const pending = state.log.shown.some((d) => d.status === 'pending');
  const status = $('auto-refresh-status');
  const text = autoRefreshText(on, pending);
  // Set only on change: a polite live region then speaks once per change, not every 5 s.
  if (status.textContent !== text) status.textContent = text;
  status.dataset.active = String(on && pending);
  if (on && pending) autoTimer = setTimeout(autoRefreshTick, AUTO_REFRESH_MS);
}

async function autoRefreshTick() {
  autoTimer = null;
  if (document.hidden || state.authFailed) return scheduleAutoRefresh();
  try {
    await refreshLogAndDetails();
  } catch (err) {
    if (err.status === 401) return;
    scheduleAutoRefresh();
  }
}

export function onAutoRefreshToggle() {
  scheduleAutoRefresh();
  if ($('auto-refresh').checked && state.log.shown.some((d) => d.status === 'pending')) refreshLogAndDetails().catch(() => undefined);
}

// ---------------------------------------------------------------------------
// Bulk resend of the filtered log (POST /v1/delivery-resends, after a preview count)

const RESENDABLE = ['undeliverable', 'cancelled'];
const MAX_BULK_CALLS = 20;

/** The bulk resend body for the current filter, or why there is none. */
function bulkFilter() {
  const { params, errors } = currentFilter();
  const status = params.get('status');
  if (errors.length) return { why: 'Fix the filters first.' };
  if (!RESENDABLE.includes(status)) return { why: 'To resend many deliveries at once, filter the log on Status: Undeliverable or Cancelled.' };
  if (params.get('eventId') || params.get('deliveryId')) return { why: 'Clear the id search to resend every matching delivery (or open the delivery and press Resend).' };
  const body = { status };
  for (const name of ['endpointId', 'eventType', 'since', 'until']) if (params.get(name)) body[name] = params.get(name);
  return { body, query: new URLSearchParams(body).toString() };
}

export function renderBulkResend() {
  const box = $('bulk-resend-box');
  if (!isPaid() || isReadOnly()) {
    box.hidden = true;
    return;
  }
  box.hidden = false;
  const { body, why } = bulkFilter();
  const button = $('bulk-resend');
  button.hidden = !body;
  $('bulk-resend-help').textContent = body ? 'Resends every delivery matching these filters (not only this page), oldest first, with the same webhook-id.' : why;
}

function describeFilter(body) {
  const parts = [];
  if (body.endpointId) parts.push(`to ${endpointLabel(body.endpointId)}`);
  if (body.eventType) parts.push(`of ${body.eventType}`);
  if (body.since) parts.push(`created from ${formatTime(body.since)}`);
  if (body.until) parts.push(`${body.since ? '' : 'created '}before ${formatTime(body.until)}`);
  return parts.join(', ');
}

export async function bulkResend(button) {
  const { body } = bulkFilter();
  if (!body) return;
  await busy(button, async () => {
    try {
      const { count, skipped } = await api('GET', `/v1/delivery-resends/preview?${new URLSearchParams(body)}`);
      const what = `${body.status} ${count === 1 ? 'delivery' : 'deliveries'}`;
      const scope = describeFilter(body);
      const left = skipped ? ` ${plural(skipped, 'more matches', 'more match')} but cannot be resent (endpoint disabled or deleted, or payload purged).` : '';
      if (!count) {
        announce(`Nothing to resend: no ${body.status} delivery${scope ? ` ${scope}` : ''} can be resent.${left}`);
        return;
      }
      const confirmed = await confirmAction({
        title: `Resend ${count} ${what}?`,
        body: `Every ${body.status} delivery${scope ? ` ${scope}` : ''} gets a new attempt series now, with the same webhook-id, so your receiver can deduplicate.${left}`,
        confirmLabel: `Resend ${count}`,
        testId: 'confirm-bulk-resend',
      });
      if (!confirmed) return;
      let resent = 0;
      for (let call = 0; call < MAX_BULK_CALLS; call++) {
        const { deliveryIds, more } = await api('POST', '/v1/delivery-resends', body);
        resent += deliveryIds.length;
        if (!more || !deliveryIds.length) break;
      }
      announce(`Resent ${plural(resent, 'delivery', 'deliveries')}. They are pending until their new attempt.`);
      // The resent ones are pending now: show them (and auto-refresh follows them).
      $('filter-status').value = '';
      await onFilterChange();
    } catch (err) {
      reportError(err);
    }
  });
}

export function zoneHint() {
  const label = formatTime(new Date().toISOString()).split(' ').pop();
  const name = zoneName();
  return `Times are in your time zone, ${name === label ? name : `${name} (${label})`}.`;
}

// ---------------------------------------------------------------------------
// Delivery details

let detailsOpener = null;

export async function openDetails(id, opener) {
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
export async function refreshLogAndDetails() {
  await loadLog();
  if (state.details.id && !$('delivery-details').hidden) {
    renderDetails(await api('GET', `/v1/deliveries/${enc(state.details.id)}`));
  }
}

export function closeDetails() {
  $('delivery-details').hidden = true;
  const id = state.details.id;
  state.details.id = null;
  for (const row of document.querySelectorAll('.delivery-row.is-selected')) row.classList.remove('is-selected');
  // Back to the row that opened it, if it is still on screen.
  const row = [...document.querySelectorAll('.delivery-row')].find((r) => r.dataset.deliveryId === id);
  const target = row ? row.querySelector('.row-button') : detailsOpener && detailsOpener.isConnected ? detailsOpener : $('log-title');
  target.focus();
}

export const HELD_WHY = {
  circuit_open: "the endpoint's circuit is open, no request is made while it stays open",
  probing: 'a probe request to the endpoint is out, no request is made while it stays open',
  throttled: 'the endpoint answered 429 Too Many Requests and is paused for its Retry-After',
  rate_limited: "the endpoint's rate limit: it goes out at that pace",
  max_in_flight: "the endpoint's limit of concurrent requests: it goes out as requests finish",
};

/** A held delivery (open circuit, 429 pause or send limits): why, since when, and until when. */
export function heldText(held) {
  const why = HELD_WHY[held.reason] || held.reason;
  const until = held.until ? ` until ${formatTime(held.until)} (${relativeTime(held.until)})` : '';
  return `Held${until}: ${why} (held since ${formatTime(held.since)}).`;
}

export function setFact(id, value) {
  const dd = $(id);
  const dt = $(`${id}-label`);
  dd.textContent = value || '';
  dd.hidden = !value;
  if (dt) dt.hidden = !value;
}

export function renderDetails(d) {
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
  $('details-event-id').textContent = d.eventId;
  $('details-test').hidden = !d.test;
  $('delivery-details').dataset.status = d.status;
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

export function renderAttempts(attempts) {
  const tbody = $('attempt-rows');
  // A re-render of the same delivery (retry now, resend) keeps the header panels that were open, and the focus on one.
  const same = tbody.dataset.deliveryId === state.details.id;
  const open = new Set(same ? [...tbody.querySelectorAll('details[open]')].map((d) => d.dataset.key) : []);
  const focused = same && document.activeElement && tbody.contains(document.activeElement) ? document.activeElement.closest('details')?.dataset.key : undefined;
  const rows = attempts.flatMap((a) => {
    const headers = attemptHeaders(a, open);
    return [
      el('tr', { 'data-testid': 'attempt-row', className: headers ? 'has-headers' : undefined }, [
        el('td', { className: 'num', 'data-label': '#', text: String(a.attempt) }),
        el('td', { 'data-label': 'Time' }, [timeEl(a.startedAt)]),
        el('td', { className: 'num', 'data-label': 'Status code', text: a.statusCode !== undefined ? String(a.statusCode) : '—' }),
        el('td', { className: 'num', 'data-label': 'Duration (ms)', text: String(a.durationMs) }),
        el('td', { 'data-label': 'Error', text: a.error || '' }),
        el('td', { className: 'cell-response', 'data-label': 'Response' }, [el('code', { text: excerpt(a.responseBody || '') })]),
      ]),
      ...(headers ? [headers] : []),
    ];
  });
  tbody.replaceChildren(...rows);
  tbody.dataset.deliveryId = state.details.id || '';
  if (focused) tbody.querySelector(`details[data-key="${focused}"] > summary`)?.focus();
  $('no-attempts').hidden = attempts.length > 0;
}

/**
 * An attempt's request and response headers, each in a collapsed <details> (keyboard and
 * screen-reader friendly as it is), below its row; none for attempts recorded before headers
 * were kept.
 */
function attemptHeaders(a, open) {
  if (!a.requestHeaders && !a.responseHeaders) return undefined;
  const panels = [];
  if (a.requestHeaders) panels.push(headersPanel(a, 'request', 'Request headers', a.requestHeaders, open));
  if (a.responseHeaders) panels.push(headersPanel(a, 'response', 'Response headers', a.responseHeaders, open));
  else if (a.requestHeaders) panels.push(el('p', { className: 'help headers-none', text: 'No response headers: no answer came back.' }));
  return el('tr', { className: 'attempt-headers-row', 'data-testid': 'attempt-headers' }, [
    el('td', { className: 'cell-headers', colspan: '6' }, [el('div', { className: 'attempt-headers' }, panels)]),
  ]);
}

function headersPanel(a, kind, title, headers, open) {
  const key = `${a.attempt}-${kind}`;
  // By name: the database keeps no order (jsonb), and a sorted list is easier to scan.
  const entries = Object.entries(headers).sort(([x], [y]) => (x.toLowerCase() < y.toLowerCase() ? -1 : x.toLowerCase() > y.toLowerCase() ? 1 : 0));
  const list = el(
    'dl',
    { className: 'header-list' },
    entries.flatMap(([name, value]) => [el('dt', { text: name }), el('dd', { text: value })]),
  );
  const redacted = kind === 'request' && entries.some(([, value]) => value.startsWith('••••'));
  const details = el('details', { className: 'headers-details', 'data-key': key, 'data-testid': `${kind}-headers` }, [
    el('summary', {}, [
      document.createTextNode(`${title} `),
      el('span', { className: 'muted', text: `(${entries.length})` }),
      el('span', { className: 'visually-hidden', text: ` of attempt ${a.attempt}` }),
    ]),
    list,
    ...(redacted ? [el('p', { className: 'help', text: 'Custom header values are hidden (•••• and the last 4 characters of a long one): they may be credentials.' })] : []),
  ]);
  details.open = open.has(key);
  return details;
}

/** The details' "Find all its deliveries": the log searched by this delivery's event id. */
export async function findEventDeliveries() {
  const eventId = $('details-event-id').textContent;
  if (!eventId) return;
  $('filter-search').value = eventId;
  await onFilterChange();
  announce(`Showing the deliveries of event ${eventId}.`);
  $('log-title').focus();
}

export function prettyJson(text) {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text || '';
  }
}

export function resendSummary(d) {
  const last = d.attempts[d.attempts.length - 1];
  if (d.status === 'delivered') return 'Resent: delivered.';
  if (d.status === 'pending' && last) {
    const code = last.statusCode !== undefined ? `HTTP ${last.statusCode}` : last.error;
    return `Resent, but the attempt failed (${code}).${d.nextAttemptAt ? ` Next retry at ${formatTime(d.nextAttemptAt)}.` : ''}`;
  }
  return d.status === 'pending' ? 'Resend started; no attempt yet.' : `Resent: ${d.status}.`;
}

export async function retryNow(button) {
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

export async function resendDelivery(button) {
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
