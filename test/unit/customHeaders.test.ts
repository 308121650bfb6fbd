import { customHeaderProblems, requestHeaders } from '../../src/domain/customHeaders';

test.each([
  [{ Authorization: 'Bearer x', 'X-Tenant': 'acme', 'x.y~z': 'a\tb' }, []],
  [{ 'webhook-id': 'x' }, ['webhook-id']],
  [{ 'WEBHOOK-TIMESTAMP': '1' }, ['WEBHOOK-TIMESTAMP']],
  [{ 'Webhook-Anything': '1' }, ['Webhook-Anything']],
  [{ 'X-RR-Signature': 'x' }, ['X-RR-Signature']],
  [
    { Host: 'x', 'User-Agent': 'x', 'Content-Length': '1', Connection: 'close', TE: 'trailers', Upgrade: 'h2c', 'Keep-Alive': '1', Expect: '100-continue' },
    ['Host', 'User-Agent', 'Content-Length', 'Connection', 'TE', 'Upgrade', 'Keep-Alive', 'Expect'],
  ],
  [{ 'X Bad': 'x', 'X:Bad': 'x', '': 'x', 'X-É': 'x' }, ['X Bad', 'X:Bad', '', 'X-É']],
  [{ 'X-A': 'a\r\nX-B: 1', 'X-N': 'a\u0000', 'X-U': 'snow ☃', 'X-S': ' padded' }, ['X-A', 'X-N', 'X-U', 'X-S']],
  [{ 'X-A': '1', 'x-a': '2' }, ['x-a']],
  [{ ['X-' + 'a'.repeat(63)]: '1', 'X-Long': 'v'.repeat(1025) }, ['X-' + 'a'.repeat(63), 'X-Long']],
] as [Record<string, string>, string[]][])('when custom headers %j are checked, then the problems name %j', (headers, paths) => {
  expect(customHeaderProblems(headers).map((p) => p.path)).toEqual(paths);
});

test("when an attempt's headers are built, then custom ones never replace or duplicate a service header, whatever their case", () => {
  const service = { 'content-type': 'application/json', 'webhook-signature': 'v1,real' };
  const out = requestHeaders({ 'Content-Type': 'text/plain', 'WEBHOOK-SIGNATURE': 'v1,forged', Authorization: 'Bearer x', 'Bad\r\nName': 'x' }, service);
  expect(out).toEqual({ Authorization: 'Bearer x', 'content-type': 'application/json', 'webhook-signature': 'v1,real' });
  expect(requestHeaders(null, service)).toEqual(service);
});
