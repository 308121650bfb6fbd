import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { webhookBody, EVENT_CATALOG } from '../../src/domain/eventCatalog';
import { newSigningSecret, signatureHeaders } from '../../src/domain/signing';

// The settings page shows these snippets next to the secret (src/api/ui/snippets.js): each one
// must accept what the service really signs (src/domain/signing.ts) and refuse anything else.
// Node and Python always run; Go, PHP and Ruby where they are installed, and always in CI
// (.ci/run installs php-cli and ruby): there a missing one fails its test instead of skipping it.

const SNIPPETS_URL = pathToFileURL(resolve(__dirname, '..', '..', 'src', 'api', 'ui', 'snippets.js')).href;
const loaded = spawnSync(
  process.execPath,
  [
    '--disable-warning=MODULE_TYPELESS_PACKAGE_JSON',
    '--input-type=module',
    '-e',
    `import { SNIPPETS } from ${JSON.stringify(SNIPPETS_URL)}; process.stdout.write(JSON.stringify(SNIPPETS));`,
  ],
  {
    encoding: 'utf8',
  },
);
const SNIPPETS: { id: string; label: string; code: string }[] = JSON.parse(loaded.stdout || '[]');
const code = (id: string) => SNIPPETS.find((s) => s.id === id)!.code;

interface Case {
  name: string;
  secret: string;
  body: string;
  headers: Record<string, string>;
  rr: boolean;
  standard: boolean;
}

/** Real signatures from the service's own code, and the ways a forged or stale request differs. */
function cases(): Case[] {
  const secret = newSigningSecret();
  const previous = newSigningSecret();
  const body = webhookBody('referrer_added', { ...EVENT_CATALOG.referrer_added.example, firstName: 'Zoë 🎉' }, Date.now());
  const now = Math.floor(Date.now() / 1000);
  const signed = { ...signatureHeaders([secret], 'dlv_01jm6z5b2c4v6b8n0m2q4w6e8r', now, body) };
  const rotated = { ...signatureHeaders([secret, previous], 'dlv_01jm6z5b2c4v6b8n0m2q4w6e8r', now, body) };
  const stale = { ...signatureHeaders([secret], 'dlv_01jm6z5b2c4v6b8n0m2q4w6e8r', now - 3600, body) };
  return [
    { name: 'signed', secret, body, headers: signed, rr: true, standard: true },
    { name: 'during a rotation, with the previous secret', secret: previous, body, headers: rotated, rr: false, standard: true },
    { name: 'during a rotation, with the new secret', secret, body, headers: rotated, rr: true, standard: true },
    { name: 'body changed', secret, body: body.replace('Zoë', 'Zoe'), headers: signed, rr: false, standard: false },
    { name: 'another secret', secret: newSigningSecret(), body, headers: signed, rr: false, standard: false },
    { name: 'webhook-id changed', secret, body, headers: { ...signed, 'webhook-id': 'dlv_01jm6z5b2c4v6b8n0m2q4w6e8s' }, rr: true, standard: false },
    { name: 'an hour old', secret, body, headers: stale, rr: true, standard: false },
    { name: 'no signature headers', secret, body, headers: {}, rr: false, standard: false },
  ];
}

const expected = (all: Case[]) => all.map((c) => ({ name: c.name, rr: c.rr, standard: c.standard }));

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'snippets-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(cmd: string, args: string[], input: Case[]): unknown {
  const r = spawnSync(cmd, args, { input: JSON.stringify(input), encoding: 'utf8', cwd: dir, timeout: 90_000 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout);
}

test('when the snippets are loaded, then there is one per language, each checking both signature headers', () => {
  expect(loaded.stderr).toBe('');
  expect(SNIPPETS.map((s) => s.label)).toEqual(['Node', 'Python', 'Go', 'PHP', 'Ruby']);
  for (const s of SNIPPETS) {
    expect([s.id, /x-rr-signature/i.test(s.code), /webhook-signature/.test(s.code), /whsec_/.test(s.code)]).toEqual([s.id, true, true, true]);
  }
});

test('when the Node snippet checks real webhooks, then it accepts what the service signs and refuses a changed body, another secret, a changed id or an old timestamp', () => {
  const file = join(dir, 'verify.cjs');
  writeFileSync(
    file,
    `${code('node')}
const input = JSON.parse(require('node:fs').readFileSync(0, 'utf8'));
console.log(JSON.stringify(input.map((c) => ({ name: c.name, rr: verifyRrSignature(c.secret, Buffer.from(c.body, 'utf8'), c.headers), standard: verifyWebhookSignature(c.secret, Buffer.from(c.body, 'utf8'), c.headers) }))));
`,
  );
  const all = cases();
  expect(run(process.execPath, [file], all)).toEqual(expected(all));
});

test('when the Python snippet checks real webhooks, then it agrees with the service', () => {
  const python = spawnSync('python3', ['--version']);
  if (python.status !== 0) throw new Error('python3 is needed for this test');
  const file = join(dir, 'verify.py');
  writeFileSync(
    file,
    `${code('python')}

import json, sys
cases = json.load(sys.stdin)
print(json.dumps([{"name": c["name"], "rr": verify_rr_signature(c["secret"], c["body"].encode("utf-8"), c["headers"]), "standard": verify_webhook_signature(c["secret"], c["body"].encode("utf-8"), c["headers"])} for c in cases]))
`,
  );
  const all = cases();
  expect(run('python3', [file], all)).toEqual(expected(all));
});

/** The test when the language's command runs; in CI it runs anyway and fails if the command is missing. */
const whenInstalled = (cmd: string, versionArgs: string[]) => (process.env.CI || spawnSync(cmd, versionArgs).status === 0 ? test : test.skip);

whenInstalled('go', ['version'])('when the Go snippet checks real webhooks, then it agrees with the service', () => {
  const file = join(dir, 'main.go');
  const go = code('go').replace('package webhooks', 'package main').replace('import (', 'import (\n\t"encoding/json"\n\t"fmt"\n\t"os"');
  writeFileSync(
    file,
    `${go}
type testCase struct {
	Name    string            \`json:"name"\`
	Secret  string            \`json:"secret"\`
	Body    string            \`json:"body"\`
	Headers map[string]string \`json:"headers"\`
}

func main() {
	var cases []testCase
	if err := json.NewDecoder(os.Stdin).Decode(&cases); err != nil {
		panic(err)
	}
	out := []map[string]any{}
	for _, c := range cases {
		h := http.Header{}
		for k, v := range c.Headers {
			h.Set(k, v)
		}
		out = append(out, map[string]any{"name": c.Name, "rr": VerifyRRSignature(c.Secret, []byte(c.Body), h), "standard": VerifyWebhookSignature(c.Secret, []byte(c.Body), h, 5*time.Minute)})
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
}
`,
  );
  const all = cases();
  expect(run('go', ['run', file], all)).toEqual(expected(all));
});

whenInstalled('php', ['--version'])('when the PHP snippet checks real webhooks, then it agrees with the service', () => {
  const file = join(dir, 'verify.php');
  writeFileSync(
    file,
    `${code('php')}
$cases = json_decode(file_get_contents('php://stdin'), true);
$out = [];
foreach ($cases as $c) {
    $headers = array_change_key_case($c['headers'], CASE_LOWER);
    $out[] = ['name' => $c['name'], 'rr' => verify_rr_signature($c['secret'], $c['body'], $headers), 'standard' => verify_webhook_signature($c['secret'], $c['body'], $headers)];
}
echo json_encode($out, JSON_UNESCAPED_UNICODE), "\n";
`,
  );
  const all = cases();
  expect(run('php', [file], all)).toEqual(expected(all));
});

whenInstalled('ruby', ['--version'])('when the Ruby snippet checks real webhooks, then it agrees with the service', () => {
  const file = join(dir, 'verify.rb');
  writeFileSync(
    file,
    `${code('ruby')}
require "json"
cases = JSON.parse($stdin.read)
out = cases.map do |c|
  headers = c["headers"].transform_keys(&:downcase)
  { name: c["name"], rr: verify_rr_signature(c["secret"], c["body"], headers), standard: verify_webhook_signature(c["secret"], c["body"], headers) }
end
puts JSON.generate(out)
`,
  );
  const all = cases();
  expect(run('ruby', [file], all)).toEqual(expected(all));
});
