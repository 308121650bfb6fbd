import type { Connection } from '@temporalio/client';
import { temporal } from '@temporalio/proto';
import { DELIVERY_SEARCH_ATTRIBUTES } from '../workflows/searchAttributes';

/**
 * Registers the delivery search attributes on the namespace if they are missing (idempotent).
 * Needs operator rights; where the cluster refuses, the error says how to do it by hand.
 */
export async function ensureSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
  const missing = DELIVERY_SEARCH_ATTRIBUTES.filter((k) => !customAttributes || !(k.name in customAttributes));
  if (missing.length === 0) return;
  try {
    await connection.operatorService.addSearchAttributes({
      namespace,
      searchAttributes: Object.fromEntries(missing.map((k) => [k.name, temporal.api.enums.v1.IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD])),
    });
  } catch (err) {
    throw new Error(
      `could not register search attributes ${missing.map((k) => k.name).join(', ')} on namespace ${namespace} (${(err as Error).message}); ` +
        `register them with \`temporal operator search-attribute create --namespace ${namespace} --name <Name> --type Keyword\` or set TEMPORAL_SEARCH_ATTRIBUTES=false`,
      { cause: err },
    );
  }
}
