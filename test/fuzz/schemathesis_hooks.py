"""Schemathesis hooks for test/fuzz/schemathesis.test.ts (loaded with SCHEMATHESIS_HOOKS).

The service POSTs to every endpoint URL it accepts. So that the fuzzer can never make it
POST anywhere but loopback, every well-formed `url` the fuzzer generates for an endpoint is
replaced by the test's loopback receiver before the request is sent (the service under test
also refuses every other destination). Malformed URLs are left alone, so the server's
rejection of them is still checked; schemathesis re-classifies a case after a hook edits it.

With the admin token, `accountId` in a published event is likewise pointed at the test's
paid account, so publishing reaches the 202 path instead of only ever answering 404.
"""
import os
import re

import schemathesis

RECEIVER_URL = os.environ["RR_FUZZ_RECEIVER_URL"]
ACCOUNT_ID = os.environ["RR_FUZZ_ACCOUNT_ID"]
# The `url` pattern of the OpenAPI document (EndpointIn), as a full match.
WELL_FORMED = re.compile(r"[Hh][Tt][Tt][Pp][Ss]?://[^/?#@\s]+([/?#][\s\S]*)?")


@schemathesis.hook
def before_call(context, case, kwargs):
    body = case.body
    if not isinstance(body, dict):
        return
    path, method = case.operation.path, case.method.upper()
    if path in ("/v1/endpoints", "/v1/endpoints/{id}", "/v1/operational-endpoints", "/v1/operational-endpoints/{id}") and method in ("POST", "PATCH"):
        url = body.get("url")
        if isinstance(url, str) and len(url) <= 2048 and WELL_FORMED.fullmatch(url):
            body["url"] = RECEIVER_URL
    if path == "/v1/events" and method == "POST":
        account = body.get("accountId")
        if isinstance(account, str) and account and "\x00" not in account:
            body["accountId"] = ACCOUNT_ID


@schemathesis.hook
def after_call(context, case, response):
    # The admin may move the test's account to the free plan (a stateful link from GET
    # /v1/account to PATCH /v1/accounts/{id} finds it); put it back at once, so the paid-only
    # operations keep being exercised rather than answering 402 for the rest of the run.
    if case.operation.path != "/v1/accounts/{id}" or case.method.upper() != "PATCH" or response.status_code != 200:
        return
    if (case.path_parameters or {}).get("id") != ACCOUNT_ID or os.environ.get("RR_FUZZ_ADMIN_TOKEN") is None:
        return
    import requests

    requests.patch(
        f"{os.environ['RR_FUZZ_BASE_URL']}/v1/accounts/{ACCOUNT_ID}",
        json={"plan": "paid"},
        headers={"Authorization": f"Bearer {os.environ['RR_FUZZ_ADMIN_TOKEN']}"},
        timeout=30,
    ).raise_for_status()
