// Webhook settings page: start-up, wiring and the two views. Plain ES modules, no framework, no
// build step (see the README's "The settings page" for why): core.js (state, API, messages,
// dialog), endpoints.js (form and cards), log.js (delivery log and details), catalog.js (event
// catalog), stats.js (charts) and snippets.js (verification code), all served by the API under a
// strict same-origin CSP.
//
// Views are hash routes, so they survive a reload and the back button works: `#/` (or nothing) is
// the overview (endpoints, delivery log, event catalog); `#/endpoints/<id>` is one endpoint's page
// (its card: settings, health, stats, secret and tools; and the log of its deliveries).
import { $, state, isPaid, isReadOnly, readToken, api, showAuthError, announce, dismissToast, copySecret, endpointById } from './core.js';
import { renderEventTypeOptions, onSubmitEndpoint, resetForm, hideSecretNotice, renderEndpoints, applyEndpointView } from './endpoints.js';
import {
  renderFilterOptions,
  renderEndpointFilter,
  loadLog,
  onFilterChange,
  clearFilters,
  goOlder,
  goNewer,
  refreshLog,
  closeDetails,
  retryNow,
  resendDelivery,
  onAutoRefreshToggle,
  bulkResend,
  findEventDeliveries,
  zoneHint,
} from './log.js';
import { renderCatalog } from './catalog.js';

const TITLE = 'Webhook settings';

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

// ---------------------------------------------------------------------------
// Views

function viewFromHash() {
  const match = /^#\/endpoints\/([^/?#]+)$/.exec(location.hash);
  return match ? { name: 'endpoint', endpointId: decodeURIComponent(match[1]) } : { name: 'overview', endpointId: null };
}

/** Shows the view of the current hash; moves focus to its heading when the view changed (not on start-up). */
async function showView({ focus = true, load = true } = {}) {
  const before = state.view;
  const view = viewFromHash();
  const changed = before.name !== view.name || before.endpointId !== view.endpointId;
  state.view = view;
  const onPage = view.name === 'endpoint';
  const ep = onPage ? endpointById(view.endpointId) : null;
  document.body.dataset.view = view.name;

  for (const node of document.querySelectorAll('.overview-only')) node.hidden = onPage;
  for (const node of document.querySelectorAll('.endpoint-only')) node.hidden = !onPage;
  $('endpoints-title').textContent = onPage ? 'Endpoint' : 'Endpoints';
  $('log-title').textContent = onPage ? 'Deliveries to this endpoint' : 'Delivery log';
  $('endpoint-page-url').textContent = ep ? ep.url : '';
  document.title = onPage ? `${ep ? ep.url : 'Endpoint'} · ${TITLE}` : TITLE;
  applyEndpointView();

  // The log follows the view: an endpoint's page shows that endpoint's deliveries.
  const select = $('filter-endpoint');
  if (onPage) {
    if (before.name !== 'endpoint') state.overviewEndpointFilter = select.value;
    renderEndpointFilter();
  } else if (before.name === 'endpoint') select.value = state.overviewEndpointFilter || '';
  select.disabled = onPage;
  $('filter-endpoint-field').hidden = onPage;

  if (!changed) return;
  if (focus) {
    $('endpoints-title').focus();
    window.scrollTo(0, 0);
  }
  if (load && (before.name === 'endpoint' || onPage)) await onFilterChange();
}

/** Leaves an endpoint's page for the overview (e.g. to edit it in the form). */
export function goToOverview({ focus = true } = {}) {
  if (location.hash !== '#/') history.pushState(null, '', '#/');
  showView({ focus }).catch(() => undefined);
}

/** A new link opened in the same tab changes only the fragment: start over with its token. Otherwise a view change. */
function onHashChange() {
  if (new URLSearchParams(location.hash.replace(/^#/, '')).get('token')) {
    readToken();
    location.reload();
    return;
  }
  showView().catch(() => undefined);
}

// ---------------------------------------------------------------------------
// Start-up

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
  for (const id of ['filter-status', 'filter-endpoint', 'filter-event-type', 'filter-since', 'filter-until']) $(id).addEventListener('change', onFilterChange);
  // The search box applies on Enter (the filter form's submit) or with its button.
  $('log-filters').addEventListener('submit', (event) => {
    event.preventDefault();
    onFilterChange();
  });
  $('clear-filters').addEventListener('click', () => clearFilters().then(() => announce('Filters cleared.')));
  $('refresh-log').addEventListener('click', (event) => refreshLog(event.currentTarget));
  $('auto-refresh').addEventListener('change', onAutoRefreshToggle);
  $('bulk-resend').addEventListener('click', (event) => bulkResend(event.currentTarget));
  $('older-page').addEventListener('click', goOlder);
  $('newer-page').addEventListener('click', goNewer);
  $('close-details').addEventListener('click', closeDetails);
  $('resend').addEventListener('click', (event) => resendDelivery(event.currentTarget));
  $('retry-now').addEventListener('click', (event) => retryNow(event.currentTarget));
  $('find-event-deliveries').addEventListener('click', findEventDeliveries);
  $('delivery-details').addEventListener('keydown', (event) => {
    if (event.key === 'Escape') closeDetails();
  });
  document.addEventListener('visibilitychange', () => {
    // Back to a hidden tab's page: catch up at once if it was auto-refreshing.
    if (!document.hidden && $('auto-refresh-status').dataset.active === 'true') loadLog().catch(() => undefined);
  });
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
    renderCatalog();
    $('time-zone-hint').textContent = zoneHint();
    await showView({ focus: false, load: false });
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
