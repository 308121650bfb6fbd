import type { DestinationGuard } from '../http/destinationGuard';
import { normaliseEndpointUrl } from '../domain/endpointUrl';
import type { FieldError } from './errors';

/**
 * A route `check` for a body's `url`: the destination policy needs DNS, so it runs with the schema
 * and one 400 names every bad field. Nothing to add when the schema already refused the url.
 */
export function endpointUrlCheck(guard: Pick<DestinationGuard, 'check'>) {
  return async (raw: unknown, schemaErrors: FieldError[]): Promise<FieldError[]> => {
    const typed = (raw as { url?: unknown } | null)?.url;
    if (typeof typed !== 'string' || schemaErrors.some((e) => e.path === 'url')) return [];
    const n = normaliseEndpointUrl(typed);
    const problem = 'href' in n ? await guard.check(n.href) : undefined;
    return problem ? [{ path: 'url', message: problem }] : [];
  };
}
