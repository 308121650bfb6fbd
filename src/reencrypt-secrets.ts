/**
 * `npm run secrets:reencrypt`: re-encrypts every endpoint's signing secret and previous secret
 * under the newest key of the ring (plaintext ones from before encryption too), in batches,
 * printing counts. Idempotent; run it after putting a new key first in SECRET_ENCRYPTION_KEYS
 * (and restarting the services with the new ring), then drop the old key.
 *
 * Same settings as the service: DATABASE_URL (unset: the embedded database under DATA_DIR, which
 * it starts itself, so with `npm start` stopped) and SECRET_ENCRYPTION_KEYS (unset: the key in
 * DATA_DIR/secret-key; never generates one).
 */
import { configureSecretEncryption, openServiceDatabase } from './bootstrap';
import { ConfigError, loadConfig } from './config';
import { reencryptSecrets, secretKeyRing } from './db/endpointSecrets';

async function main() {
  const cfg = loadConfig(process.env, { embedded: true });
  configureSecretEncryption(cfg, { generate: false });
  const ring = secretKeyRing();
  if (!ring) throw new ConfigError('No key to encrypt with: set SECRET_ENCRYPTION_KEYS (newest first).');
  const { db, embeddedPostgres } = await openServiceDatabase(cfg);
  try {
    console.log(`Re-encrypting endpoint signing secrets under key ${ring.keys[0].id} (ring: ${ring.keys.map((k) => k.id).join(', ')}) …`);
    const counts = await reencryptSecrets(db, ring, { onBatch: (c) => console.log(`  ${c.endpoints} endpoints read`) });
    console.log(
      `Done: ${counts.endpoints} endpoints, ${counts.reencrypted} re-encrypted, ${counts.alreadyCurrent} already under the newest key, ${counts.skipped} changed meanwhile${counts.skipped ? ' (run again)' : ''}.`,
    );
    if (counts.skipped) process.exitCode = 2;
  } finally {
    await db.close();
    await embeddedPostgres?.stop();
  }
}

main().catch((err: Error) => {
  console.error(err instanceof ConfigError ? err.message : (err.message ?? err));
  process.exit(1);
});
