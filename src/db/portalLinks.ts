import type { Queryable } from './database';

/** Revokes one portal link of an account until it would have expired anyway. */
export async function revokePortalLink(db: Queryable, accountId: string, linkId: string, expiresAt: Date): Promise<void> {
  await db.query(
    `insert into portal_link_revocations (link_id, account_id, expires_at) values ($1, $2, $3)
     on conflict (link_id) do nothing`,
    [linkId, accountId, expiresAt],
  );
}

/** Revokes every portal link of an account issued up to now. */
export async function revokeAllPortalLinks(db: Queryable, accountId: string): Promise<boolean> {
  const rows = await db.query('update accounts set portal_links_revoked_before = now() where id = $1 returning id', [accountId]);
  return rows.length > 0;
}

/** Whether a verified link was revoked (alone, or with all of its account's links). One read per request. */
export async function portalLinkRevoked(db: Queryable, accountId: string, linkId: string, issuedAtMs: number): Promise<boolean> {
  const [row] = await db.query<{ revoked: boolean }>(
    `select exists (select 1 from portal_link_revocations where link_id = $2 and account_id = $1)
         or coalesce((select portal_links_revoked_before from accounts where id = $1) >= to_timestamp($3::double precision / 1000), false) as revoked`,
    [accountId, linkId, issuedAtMs],
  );
  return row?.revoked ?? false;
}
