import type { Database } from '../../src/db/database';
import { createAccount } from '../../src/db/accounts';
import { createEndpoint } from '../../src/db/endpoints';
import { acceptEvent } from '../../src/db/events';
import { EVENT_CATALOG, webhookBody, type EventType } from '../../src/domain/eventCatalog';
import { idTimePrefix, newId } from '../../src/domain/ids';

/** A paid account with one endpoint subscribed to every event type, straight in the database. */
export async function accountWithEndpoint(db: Database, url: string, plan: 'free' | 'paid' = 'paid') {
  const { account, apiKey } = await createAccount(db, { name: 'Test account', plan });
  const endpoint = await createEndpoint(db, account.id, { url, eventTypes: ['referrer_added', 'referee_added', 'reward_unlocked'] });
  return { account, apiKey, endpoint };
}

/** An event and its delivery row, as publishing would store them (without starting anything). */
export async function storedDelivery(db: Database, accountId: string, endpointId: string, eventType: EventType = 'referrer_added', createdAt = new Date()) {
  const eventId = newId('evt', createdAt.getTime());
  const body = webhookBody(eventType, EVENT_CATALOG[eventType].example, createdAt.getTime());
  const accepted = await acceptEvent(db, {
    id: eventId,
    accountId,
    eventType,
    body,
    requestHash: '',
    isTest: false,
    createdAt,
    onlyEndpointId: endpointId,
    deliveryIdPrefix: idTimePrefix('dlv', createdAt.getTime()),
  });
  return { eventId, deliveryId: accepted.deliveries[0].id };
}
