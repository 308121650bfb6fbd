/** SECRET_ENCRYPTION_KEYS of the test suite (a fixed, public test key: never use it elsewhere). */
export const TEST_SECRET_KEYS = Buffer.alloc(32, 'rr-webhooks test secret key ring').toString('base64');
