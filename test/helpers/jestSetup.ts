import { useSecretKeyRing } from '../../src/db/endpointSecrets';
import { keyRing, parseKeyList } from '../../src/domain/secretBox';
import { TEST_SECRET_KEYS } from './secretKeys';

jest.setTimeout(120_000);

// Endpoint signing secrets are encrypted at rest in every test, as in production (the entry
// points install the ring from SECRET_ENCRYPTION_KEYS; tests that spawn them pass TEST_SECRET_KEYS).
useSecretKeyRing(keyRing(parseKeyList(TEST_SECRET_KEYS)!));
