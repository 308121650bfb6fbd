// Signature verification snippets shown next to an endpoint's secret: Node, Python, Go, PHP and
// Ruby, each checking both headers the service sends (X-RR-Signature and Standard Webhooks'
// webhook-signature), with no dependency beyond the language's standard library. The texts are
// plain data so a unit test runs the Node, Python and Go ones against real signatures
// (test/unit/verificationSnippets.test.ts); nothing here touches the page until renderSnippets.

export const SNIPPETS = [
  {
    id: 'node',
    label: 'Node',
    code: `// Node 18+, no dependency. rawBody: the request body exactly as received (a Buffer, before any
// JSON parsing, e.g. express.raw({ type: 'application/json' })); headers: req.headers (lowercase names).
const crypto = require('node:crypto');

const same = (a, b) => a.length === b.length && crypto.timingSafeEqual(Buffer.from(a), Buffer.from(b));

// X-RR-Signature: hex HMAC-SHA256 of the raw body, keyed with the secret string (whsec_ included).
function verifyRrSignature(secret, rawBody, headers) {
  const expected = crypto.createHmac('sha256', Buffer.from(secret, 'utf8')).update(rawBody).digest('hex');
  return same(String(headers['x-rr-signature'] || ''), expected);
}

// webhook-signature (Standard Webhooks): base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>",
// keyed with the base64-decoded secret after "whsec_"; one or more space-separated "v1,<signature>".
function verifyWebhookSignature(secret, rawBody, headers, toleranceSeconds = 300) {
  const id = String(headers['webhook-id'] || '');
  const timestamp = String(headers['webhook-timestamp'] || '');
  if (!id || !/^\\d+$/.test(timestamp) || Math.abs(Date.now() / 1000 - Number(timestamp)) > toleranceSeconds) return false;
  const key = Buffer.from(secret.replace(/^whsec_/, ''), 'base64');
  const expected = crypto.createHmac('sha256', key).update(\`\${id}.\${timestamp}.\`).update(rawBody).digest('base64');
  return String(headers['webhook-signature'] || '')
    .split(' ')
    .some((entry) => entry.startsWith('v1,') && same(entry.slice(3), expected));
}

// const secret = process.env.WEBHOOK_SECRET;
// if (!verifyWebhookSignature(secret, req.body, req.headers)) return res.status(401).end();
`,
  },
  {
    id: 'python',
    label: 'Python',
    code: `# Python 3.9+, standard library only. raw_body: the request body as bytes, exactly as received
# (Flask: request.get_data(); Django: request.body); headers: request.headers (any case works).
import base64
import hashlib
import hmac
import time


def verify_rr_signature(secret: str, raw_body: bytes, headers) -> bool:
    """X-RR-Signature: hex HMAC-SHA256 of the raw body, keyed with the secret string (whsec_ included)."""
    expected = hmac.new(secret.encode("utf-8"), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers.get("x-rr-signature", ""))


def verify_webhook_signature(secret: str, raw_body: bytes, headers, tolerance_seconds: int = 300) -> bool:
    """webhook-signature (Standard Webhooks): base64 HMAC-SHA256 of "<id>.<timestamp>.<body>",
    keyed with the base64-decoded secret after "whsec_"; one or more space-separated "v1,<signature>"."""
    msg_id = headers.get("webhook-id", "")
    timestamp = headers.get("webhook-timestamp", "")
    if not msg_id or not timestamp.isdigit() or abs(time.time() - int(timestamp)) > tolerance_seconds:
        return False
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{msg_id}.{timestamp}.".encode("utf-8") + raw_body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")
    return any(
        hmac.compare_digest(expected, entry[3:])
        for entry in headers.get("webhook-signature", "").split(" ")
        if entry.startswith("v1,")
    )


# secret = os.environ["WEBHOOK_SECRET"]
# if not verify_webhook_signature(secret, request.get_data(), request.headers): abort(401)
`,
  },
  {
    id: 'go',
    label: 'Go',
    code: `// Go 1.20+, standard library only. rawBody: the request body exactly as received (io.ReadAll(r.Body)).
package webhooks

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// VerifyRRSignature checks X-RR-Signature: hex HMAC-SHA256 of the raw body, keyed with the secret string (whsec_ included).
func VerifyRRSignature(secret string, rawBody []byte, h http.Header) bool {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(rawBody)
	expected := hex.EncodeToString(mac.Sum(nil))
	return hmac.Equal([]byte(expected), []byte(h.Get("X-RR-Signature")))
}

// VerifyWebhookSignature checks webhook-signature (Standard Webhooks): base64 HMAC-SHA256 of
// "<webhook-id>.<webhook-timestamp>.<body>", keyed with the base64-decoded secret after "whsec_".
func VerifyWebhookSignature(secret string, rawBody []byte, h http.Header, tolerance time.Duration) bool {
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if id == "" || err != nil || time.Since(time.Unix(sec, 0)).Abs() > tolerance {
		return false
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(rawBody)
	expected := base64.StdEncoding.EncodeToString(mac.Sum(nil))
	for _, entry := range strings.Split(h.Get("webhook-signature"), " ") {
		if sig, ok := strings.CutPrefix(entry, "v1,"); ok && hmac.Equal([]byte(sig), []byte(expected)) {
			return true
		}
	}
	return false
}

// if !VerifyWebhookSignature(os.Getenv("WEBHOOK_SECRET"), body, r.Header, 5*time.Minute) { w.WriteHeader(401); return }
`,
  },
  {
    id: 'php',
    label: 'PHP',
    code: `<?php
// PHP 8+, no extension beyond the defaults. $rawBody = file_get_contents('php://input');
// $headers = array_change_key_case(getallheaders(), CASE_LOWER);

// X-RR-Signature: hex HMAC-SHA256 of the raw body, keyed with the secret string (whsec_ included).
function verify_rr_signature(string $secret, string $rawBody, array $headers): bool
{
    return hash_equals(hash_hmac('sha256', $rawBody, $secret), $headers['x-rr-signature'] ?? '');
}

// webhook-signature (Standard Webhooks): base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>",
// keyed with the base64-decoded secret after "whsec_"; one or more space-separated "v1,<signature>".
function verify_webhook_signature(string $secret, string $rawBody, array $headers, int $tolerance = 300): bool
{
    $id = $headers['webhook-id'] ?? '';
    $timestamp = $headers['webhook-timestamp'] ?? '';
    if ($id === '' || !ctype_digit($timestamp) || abs(time() - (int) $timestamp) > $tolerance) {
        return false;
    }
    $key = base64_decode(preg_replace('/^whsec_/', '', $secret));
    $expected = base64_encode(hash_hmac('sha256', "$id.$timestamp.$rawBody", $key, true));
    foreach (explode(' ', $headers['webhook-signature'] ?? '') as $entry) {
        if (str_starts_with($entry, 'v1,') && hash_equals($expected, substr($entry, 3))) {
            return true;
        }
    }
    return false;
}

// if (!verify_webhook_signature(getenv('WEBHOOK_SECRET'), $rawBody, $headers)) { http_response_code(401); exit; }
`,
  },
  {
    id: 'ruby',
    label: 'Ruby',
    code: `# Ruby 3+, standard library only. raw_body: request.raw_post (Rails) or request.body.read (Rack);
# headers: a hash with lowercase names, e.g. { "webhook-id" => request.headers["webhook-id"], ... }.
require "base64"
require "openssl"

# X-RR-Signature: hex HMAC-SHA256 of the raw body, keyed with the secret string (whsec_ included).
def verify_rr_signature(secret, raw_body, headers)
  expected = OpenSSL::HMAC.hexdigest("SHA256", secret, raw_body)
  OpenSSL.secure_compare(expected, headers["x-rr-signature"].to_s)
end

# webhook-signature (Standard Webhooks): base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>",
# keyed with the base64-decoded secret after "whsec_"; one or more space-separated "v1,<signature>".
def verify_webhook_signature(secret, raw_body, headers, tolerance: 300)
  id = headers["webhook-id"].to_s
  timestamp = headers["webhook-timestamp"].to_s
  return false if id.empty? || timestamp !~ /\\A\\d+\\z/ || (Time.now.to_i - timestamp.to_i).abs > tolerance

  key = Base64.strict_decode64(secret.delete_prefix("whsec_"))
  expected = Base64.strict_encode64(OpenSSL::HMAC.digest("SHA256", key, "#{id}.#{timestamp}.#{raw_body}"))
  headers["webhook-signature"].to_s.split(" ").any? do |entry|
    entry.start_with?("v1,") && OpenSSL.secure_compare(expected, entry.delete_prefix("v1,"))
  end
end

# head :unauthorized unless verify_webhook_signature(ENV.fetch("WEBHOOK_SECRET"), raw_body, headers)
`,
  },
];

let snippetsCounter = 0;

/**
 * Fills `box` with a tab list (one tab per language, arrow keys move between them, as the WAI-ARIA
 * tabs pattern) and a panel holding the code and a Copy button; `onCopy(text)` copies.
 */
export function renderSnippets(box, onCopy) {
  const n = ++snippetsCounter;
  const make = (tag, props = {}, text) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const tabs = make('div', { role: 'tablist', 'aria-label': 'Language', class: 'snippet-tabs' });
  const panels = [];
  const buttons = SNIPPETS.map((s, i) => {
    const tabId = `snippet-${n}-${s.id}-tab`;
    const panelId = `snippet-${n}-${s.id}`;
    const tab = make(
      'button',
      {
        type: 'button',
        role: 'tab',
        id: tabId,
        'aria-controls': panelId,
        'aria-selected': String(i === 0),
        tabindex: i === 0 ? '0' : '-1',
        class: 'snippet-tab',
        'data-testid': `snippet-tab-${s.id}`,
      },
      s.label,
    );
    const panel = make('div', { role: 'tabpanel', id: panelId, 'aria-labelledby': tabId, class: 'snippet-panel', 'data-testid': `snippet-${s.id}` });
    if (i !== 0) panel.hidden = true;
    const copy = make('button', { type: 'button', class: 'btn btn-small snippet-copy', 'data-testid': `copy-snippet-${s.id}` }, `Copy ${s.label} code`);
    copy.addEventListener('click', () => onCopy(s.code, s.label));
    const pre = make('pre', { class: 'snippet-code', tabindex: '0', 'aria-label': `${s.label} verification code` });
    pre.append(make('code', {}, s.code));
    panel.append(copy, pre);
    panels.push(panel);
    tabs.append(tab);
    return tab;
  });
  const select = (index, focus) => {
    buttons.forEach((b, i) => {
      b.setAttribute('aria-selected', String(i === index));
      b.setAttribute('tabindex', i === index ? '0' : '-1');
      panels[i].hidden = i !== index;
    });
    if (focus) buttons[index].focus();
  };
  buttons.forEach((b, i) => {
    b.addEventListener('click', () => select(i, false));
    b.addEventListener('keydown', (event) => {
      const last = buttons.length - 1;
      const to = { ArrowRight: i === last ? 0 : i + 1, ArrowLeft: i === 0 ? last : i - 1, Home: 0, End: last }[event.key];
      if (to === undefined) return;
      event.preventDefault();
      select(to, true);
    });
  });
  box.replaceChildren(tabs, ...panels);
}
