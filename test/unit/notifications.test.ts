import { Client } from 'pg';
import { listenOn } from '../../src/db/notifications';

test('when the first listening connection fails, then listenOn rejects and tries no more (nothing left running)', async () => {
  let connects = 0;
  const connect = () => {
    connects++;
    return new Client({ host: '127.0.0.1', port: 1, connectionTimeoutMillis: 1_000 }); // nothing listens on port 1
  };
  const errors: Error[] = [];
  await expect(
    listenOn(
      connect,
      'rr_probe',
      () => undefined,
      (err) => errors.push(err),
    ),
  ).rejects.toThrow();
  await new Promise((r) => setTimeout(r, 1_500)); // past the reconnect delay
  expect(connects).toBe(1);
});

test('a channel name that is not a plain identifier is refused (it is spliced into LISTEN)', async () => {
  await expect(
    listenOn(
      () => new Client(),
      'x; drop table deliveries',
      () => undefined,
      () => undefined,
    ),
  ).rejects.toThrow(/plain channel name/);
});
