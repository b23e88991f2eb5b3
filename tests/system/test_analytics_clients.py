"""Real, unmodified analytics SDKs against the real local stack (a child process, API keys on).

Each SDK sends a mix of track/identify/page/alias calls with unicode, e-mail addresses in properties
and messages near the 32 KB limit (so batches fill to the SDK's byte limit), pointed at the stack by
its documented host setting; the test proves the SDK saw no error, and that each call is stored exactly
once under the key's tenant with its type, ids and properties mapped, the e-mail redacted and the
write key nowhere. Through the fault proxy (503 before and after forwarding), the SDK's own retries
deliver everything exactly once: a message sent again keeps its id, so it maps to the same event id.

The SDKs run in a virtualenv of their own (their pins, requests and backoff among them, are not the
project's): each call below runs a client script there and reads what it printed.
"""

from __future__ import annotations

import inspect
import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local.inspect import StackInspector
from local.process import StackProcess
from tests.support.clients import FaultProxy, client_venv, create_key
from tests.support.localkit import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CALLS = 200
SDKS = (
    "segment-analytics-python==2.4.0",
    "rudder-sdk-python==2.1.9",
    "posthog==7.91.1",
    "snowplow-tracker==1.1.0",
)
TENANTS = (
    "segment",
    "segment-retry",
    "rudder",
    "rudder-retry",
    "posthog",
    "posthog-retry",
    "snowplow",
    "snowplow-bearer",
    "snowplow-retry",
)
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
KINDS = ("track", "identify", "page", "alias")


def note(i: int) -> str:
    """Call ``i``'s text: every tenth has an e-mail address, others unicode or 30 KB."""
    if i % 10 == 0:
        return f"contact ana.{i}@example.com about order {i}"
    if i % 10 == 1:
        return "unicode ✓ naïve café 日本語 🚀"
    if i % 10 == 2:
        return "x" * 30_000
    return f"plain {i}"


SEGMENT_CLIENT = """
import importlib, json, sys
module, host, key, tag, n = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5])
analytics = importlib.import_module(module)
errors = []
client = analytics.Client(key, host=host, gzip=True, max_retries=10, upload_size=100,
                          on_error=lambda error, batch: errors.append(repr(error)))
for i in range(n):
    mid, uid = f"{tag}-{i:04d}", f"user-{i % 17}"
    props = {"seq": i, "tag": tag, "note": note(i)}
    kind = i % 4
    if kind == 0:
        client.track(user_id=uid, event="Order Completed ✓", properties=props, message_id=mid)
    elif kind == 1:
        client.identify(user_id=uid, traits={**props, "name": "Zoë"}, message_id=mid)
    elif kind == 2:
        client.page(user_id=uid, category="docs", name="Café", properties=props, message_id=mid)
    else:
        client.alias(previous_id=f"anon-{i}", user_id=uid, message_id=mid)
client.flush()
client.join()
print("ERRORS=" + json.dumps(errors))
"""


@dataclass
class Running:
    api: str
    keys: dict[str, str]
    probe: StackInspector


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("analytics-clients")
    state = root / "state"
    with StackProcess(
        state, visibility_timeout=2, run_args=["--auth"], log_path=root / "stack.log"
    ) as process:
        stack = process.start()
        keys = {tenant: create_key(state, tenant) for tenant in TENANTS}
        yield Running(stack.api_url, keys, StackInspector.for_stack(stack, read_timeout=120))


@pytest.fixture(scope="module")
def sdk_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return client_venv(tmp_path_factory.mktemp("analytics-sdks"), SDKS)


def run_segment_client(python: Path, module: str, host: str, key: str, tag: str, n: int = CALLS) -> list[str]:
    """Run the SDK ``module`` (``segment.analytics`` or ``rudderstack.analytics``); its on_error calls."""
    script = inspect.getsource(note) + SEGMENT_CLIENT
    out = subprocess.run(
        [str(python), "-c", script, module, host, key, tag, str(n)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    line = next((x for x in out.stdout.splitlines() if x.startswith("ERRORS=")), None)
    assert line is not None, out.stdout[-1000:] + out.stderr[-3000:]
    return list(json.loads(line.removeprefix("ERRORS=")))


def stored_by_number(
    probe: StackInspector, number_of: Callable[[str], int | None], n: int, timeout: float = 240
) -> dict[int, list[dict[str, Any]]]:
    """Stored records by the call number ``number_of`` reads from their client id, once ``n`` are there."""

    def collect() -> dict[int, list[dict[str, Any]]]:
        found: dict[int, list[dict[str, Any]]] = {}
        for record in probe.stored_records():
            i = number_of(str((record.get("client") or {}).get("event_id", "")))
            if i is not None:
                found.setdefault(i, []).append(record)
        return found

    wait_for(lambda: sum(len(v) for v in collect().values()) >= n, timeout=timeout, interval=2)
    time.sleep(3)  # anything more (a duplicate) would land within the worker's next batches
    return collect()


def assert_every_call_stored_once(found: dict[int, list[dict[str, Any]]]) -> None:
    assert sorted(found) == list(range(CALLS)), f"missing: {sorted(set(range(CALLS)) - set(found))[:10]}"
    doubles = {i: len(v) for i, v in found.items() if len(v) != 1}
    assert not doubles, f"stored more than once: {doubles}"


def stored(
    probe: StackInspector, tag: str, n: int = CALLS, timeout: float = 240
) -> dict[int, list[dict[str, Any]]]:
    """The stored records of ``tag`` by sequence number (from their messageId), once ``n`` are there."""
    pattern = re.compile(rf"^{re.escape(tag)}-(\d{{4}})$")

    def number_of(client_id: str) -> int | None:
        match = pattern.match(client_id)
        return int(match.group(1)) if match else None

    return stored_by_number(probe, number_of, n, timeout)


def check_stored(
    found: dict[int, list[dict[str, Any]]], tenant: str, tag: str, key: str, library: str
) -> None:
    """Each call exactly once, under ``tenant``, type, ids and properties mapped, e-mail redacted, no key."""
    assert_every_call_stored_once(found)
    for i, (record,) in sorted(found.items()):
        payload = record["payload"]
        kind = KINDS[i % 4]
        assert record["tenant_id"] == tenant
        assert record["kind"] == "event"
        assert record["source"]["protocol"] == "segment"
        assert record["type"] == ("track:Order Completed ✓" if kind == "track" else kind), (i, record["type"])
        assert payload["type"] == kind
        assert payload["messageId"] == f"{tag}-{i:04d}"
        assert payload["userId"] == f"user-{i % 17}"
        assert payload["context"]["library"]["name"] == library
        assert "writeKey" not in payload
        assert key not in json.dumps(record)
        if kind == "alias":
            assert payload["previousId"] == f"anon-{i}"
            continue
        # rudder-sdk-python sends identify traits in context.traits, as RudderStack's API defines them
        if kind == "identify":
            fields = payload["context"]["traits"] if tag.startswith("rudder") else payload["traits"]
        else:
            fields = payload["properties"]
        assert (fields["seq"], fields["tag"]) == (i, tag)
        if i % 10 == 0:
            assert not EMAIL.search(fields["note"]), fields["note"]
            assert fields["note"] == EMAIL.sub("[REDACTED:email]", note(i))
        else:
            assert fields["note"] == note(i)
        if kind == "identify":
            assert fields["name"] == "Zoë"
        if kind == "page":
            assert (payload["name"], payload["category"]) == ("Café", "docs")


@pytest.mark.parametrize(
    ("module", "tenant", "library"),
    [
        ("segment.analytics", "segment", "analytics-python"),
        ("rudderstack.analytics", "rudder", "analytics-python"),
    ],
)
def test_sdk_stores_every_call_once(
    running: Running, sdk_python: Path, module: str, tenant: str, library: str
) -> None:
    errors = run_segment_client(sdk_python, module, running.api, running.keys[tenant], tenant)
    assert errors == []
    check_stored(stored(running.probe, tenant), tenant, tenant, running.keys[tenant], library)


@pytest.mark.parametrize(
    ("module", "tenant"), [("segment.analytics", "segment-retry"), ("rudderstack.analytics", "rudder-retry")]
)
def test_sdk_retries_through_503s_and_stores_every_call_once(
    running: Running, sdk_python: Path, module: str, tenant: str
) -> None:
    proxy = FaultProxy(running.api)
    url = proxy.start()
    try:
        errors = run_segment_client(sdk_python, module, url, running.keys[tenant], tenant)
    finally:
        proxy.stop()
    # THEN the SDK reported no error, after the proxy refused and lost answers along the way
    assert errors == []
    assert {"refused", "lost-answer", "forwarded"} <= set(proxy.seen)
    # AND a batch whose answer was lost and was sent again is stored once, not twice
    check_stored(stored(running.probe, tenant), tenant, tenant, running.keys[tenant], "analytics-python")


@pytest.mark.parametrize("module", ["segment.analytics", "rudderstack.analytics"])
def test_sdk_with_a_wrong_key_gets_a_permanent_refusal(
    running: Running, sdk_python: Path, module: str
) -> None:
    started = time.monotonic()
    errors = run_segment_client(sdk_python, module, running.api, "slk_" + "W" * 43, f"wrong-{module[:4]}", 3)
    # THEN the SDK reports one error, a 401 it does not retry (no backoff: the answer comes at once)
    assert len(errors) == 1 and "401" in errors[0] and "unauthorized" in errors[0], errors
    assert time.monotonic() - started < 60


# --- posthog-python, PostHog capture (/batch/) ----------------------------------------------------

POSTHOG_CLIENT = """
import json, sys, uuid
from posthog import Posthog
host, key, tag, n, gzip = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "gzip"
errors = []
client = Posthog(key, host=host, flush_at=50, max_retries=10, gzip=gzip, disable_geoip=True,
                 on_error=lambda error, batch: errors.append(repr(error)))
for i in range(n):
    event_uuid, did = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tag}-{i}")), f"user-{i % 17}"
    props = {"seq": i, "tag": tag, "note": note(i)}
    kind = i % 4
    if kind == 0:
        client.capture("Order Completed ✓", distinct_id=did, properties=props, uuid=event_uuid)
    elif kind == 1:
        client.set(distinct_id=did, properties={**props, "name": "Zoë"}, uuid=event_uuid)
    elif kind == 2:
        client.capture("$pageview", distinct_id=did, properties={**props, "$current_url": "https://example.com/café"},
                       uuid=event_uuid)
    else:
        client.alias(previous_id=f"anon-{i}", distinct_id=did, uuid=event_uuid)
client.flush()
client.shutdown()
print("ERRORS=" + json.dumps(errors))
"""
POSTHOG_TYPES = ("Order Completed ✓", "$set", "$pageview", "$create_alias")


def run_posthog_client(
    python: Path, host: str, key: str, tag: str, n: int = CALLS, gzip: bool = False
) -> list[str]:
    script = inspect.getsource(note) + POSTHOG_CLIENT
    out = subprocess.run(
        [str(python), "-c", script, host, key, tag, str(n), "gzip" if gzip else "plain"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    line = next((x for x in out.stdout.splitlines() if x.startswith("ERRORS=")), None)
    assert line is not None, out.stdout[-1000:] + out.stderr[-3000:]
    return list(json.loads(line.removeprefix("ERRORS=")))


def posthog_stored(probe: StackInspector, tag: str, timeout: float = 240) -> dict[int, list[dict[str, Any]]]:
    """The stored events of ``tag`` by sequence number (their uuid is uuid5 of tag and number)."""
    import uuid

    numbers = {str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tag}-{i}")): i for i in range(CALLS)}
    return stored_by_number(probe, numbers.get, CALLS, timeout)


def check_posthog_stored(found: dict[int, list[dict[str, Any]]], tenant: str, key: str) -> None:
    assert_every_call_stored_once(found)
    for i, (record,) in sorted(found.items()):
        payload = record["payload"]
        kind = i % 4
        assert (record["tenant_id"], record["kind"], record["source"]["protocol"]) == (
            tenant,
            "event",
            "posthog",
        )
        assert record["type"] == POSTHOG_TYPES[kind] == payload["event"]
        assert "api_key" not in payload and "token" not in payload.get("properties", {})
        assert key not in json.dumps(record)
        if kind == 3:
            assert payload["distinct_id"] == f"anon-{i}"
            assert payload["properties"]["alias"] == f"user-{i % 17}"
            continue
        assert payload["distinct_id"] == f"user-{i % 17}"
        fields = payload["$set"] if kind == 1 else payload["properties"]
        assert (fields["seq"], fields["tag"]) == (i, tenant)
        if i % 10 == 0:
            assert not EMAIL.search(fields["note"]), fields["note"]
            assert fields["note"] == EMAIL.sub("[REDACTED:email]", note(i))
        else:
            assert fields["note"] == note(i)
        if kind == 2:
            assert payload["properties"]["$current_url"] == "https://example.com/café"


def test_posthog_sdk_stores_every_event_once(running: Running, sdk_python: Path) -> None:
    errors = run_posthog_client(sdk_python, running.api, running.keys["posthog"], "posthog")
    assert errors == []
    check_posthog_stored(posthog_stored(running.probe, "posthog"), "posthog", running.keys["posthog"])


def test_posthog_sdk_retries_through_503s_and_stores_every_event_once(
    running: Running, sdk_python: Path
) -> None:
    proxy = FaultProxy(running.api)
    url = proxy.start()
    try:
        errors = run_posthog_client(
            sdk_python, url, running.keys["posthog-retry"], "posthog-retry", gzip=True
        )
    finally:
        proxy.stop()
    assert errors == []
    assert {"refused", "lost-answer", "forwarded"} <= set(proxy.seen)
    check_posthog_stored(
        posthog_stored(running.probe, "posthog-retry"), "posthog-retry", running.keys["posthog-retry"]
    )


def test_posthog_sdk_with_a_wrong_key_gets_a_permanent_refusal(running: Running, sdk_python: Path) -> None:
    started = time.monotonic()
    errors = run_posthog_client(sdk_python, running.api, "slk_" + "P" * 43, "posthog-wrong", 3)
    # THEN one error, a 401 posthog-python does not retry
    assert len(errors) == 1 and "401" in errors[0], errors
    assert time.monotonic() - started < 60


# --- snowplow-tracker, the tracker protocol (tp2) ---------------------------------------------------


def short_note(i: int) -> str:
    """A note of at most 2,000 characters: after a failure the Python tracker sends its whole buffer
    in one request, which must stay under the body limit (docs/protocols.md)."""
    return note(i)[:2000]


SNOWPLOW_CLIENT = """
import json, sys, time
from snowplow_tracker import Emitter, PageView, SelfDescribing, SelfDescribingJson, StructuredEvent, Tracker
import requests
endpoint, bearer, tag, n, base64 = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "b64"
sent, failures = [], []
session = requests.Session()
if bearer:
    session.headers["Authorization"] = "Bearer " + bearer
emitter = Emitter(endpoint, method="post", batch_size=50, max_retry_delay_seconds=2, session=session,
                  on_success=lambda events: sent.extend(events),
                  on_failure=lambda count, events: failures.append(len(events)))
tracker = Tracker(namespace="sys", emitters=emitter, app_id="shop", encode_base64=base64)
eids = {}
for i in range(n):
    ctx = [SelfDescribingJson("iglu:com.acme/order_context/jsonschema/1-0-0", {"seq": i, "tag": tag, "note": short_note(i)})]
    kind = i % 4
    if kind == 0:
        event = PageView(page_url=f"https://example.com/{tag}/{i}", page_title=f"Café {i} ✓", context=ctx)
    elif kind == 1:
        event = StructuredEvent(category="shop", action="add", label=f"{tag}-{i}", property_="日本語", value=i)
    elif kind == 2:
        event = SelfDescribing(SelfDescribingJson("iglu:com.acme/order/jsonschema/1-0-0", {"seq": i, "note": short_note(i)}), context=ctx)
    else:
        event = SelfDescribing(SelfDescribingJson("iglu:com.acme/checkout/jsonschema/1-0-0", {"seq": i, "total": 1.5}))
    eids[tracker.track(event)] = i
tracker.flush()
deadline = time.monotonic() + 240
while len(sent) < n and time.monotonic() < deadline:
    with emitter.lock:  # held while a batch is taken from the store and sent: no send is in flight
        if not emitter.retry_timer.is_active() and emitter.event_store.size() == 0:
            break  # nothing waits to be sent again: the rest was dropped
    time.sleep(0.5)
    tracker.flush()
print("RESULT=" + json.dumps({"eids": eids, "sent": len(sent), "failures": failures}))
"""
SNOWPLOW_TYPES = (
    "pv",
    "se",
    "ue:iglu:com.acme/order/jsonschema/1-0-0",
    "ue:iglu:com.acme/checkout/jsonschema/1-0-0",
)


def run_snowplow_client(
    python: Path, endpoint: str, tag: str, bearer: str = "", n: int = CALLS, base64: bool = True
) -> dict[str, Any]:
    script = inspect.getsource(note) + inspect.getsource(short_note) + SNOWPLOW_CLIENT
    out = subprocess.run(
        [str(python), "-c", script, endpoint, bearer, tag, str(n), "b64" if base64 else "plain"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT=")), None)
    assert line is not None, out.stdout[-1000:] + out.stderr[-3000:]
    result: dict[str, Any] = json.loads(line.removeprefix("RESULT="))
    return result


def snowplow_stored(
    probe: StackInspector, eids: dict[str, int], timeout: float = 240
) -> dict[int, list[dict[str, Any]]]:
    return stored_by_number(probe, eids.get, len(eids), timeout)


def check_snowplow_stored(found: dict[int, list[dict[str, Any]]], tenant: str, key: str) -> None:
    assert_every_call_stored_once(found)
    for i, (record,) in sorted(found.items()):
        payload = record["payload"]
        kind = i % 4
        assert (record["tenant_id"], record["kind"], record["source"]["protocol"]) == (
            tenant,
            "event",
            "snowplow",
        )
        assert record["type"] == SNOWPLOW_TYPES[kind]
        assert payload["aid"] == "shop" and payload["e"] == SNOWPLOW_TYPES[kind][:2]
        assert key not in json.dumps(record)
        assert not {"ue_pr", "ue_px", "co", "cx"} & set(payload)
        if kind == 1:
            assert (payload["se_la"], payload["se_pr"], payload["se_va"]) == (
                f"{tenant}-{i}",
                "日本語",
                str(i),
            )
            continue
        if kind == 3:
            assert payload["unstruct_event"]["data"]["data"] == {"seq": i, "total": 1.5}
            continue
        (context,) = payload["contexts"]["data"]
        assert context["schema"] == "iglu:com.acme/order_context/jsonschema/1-0-0"
        fields = context["data"]
        assert (fields["seq"], fields["tag"]) == (i, tenant)
        expected = EMAIL.sub("[REDACTED:email]", short_note(i)) if i % 10 == 0 else short_note(i)
        assert fields["note"] == expected
        if kind == 0:
            assert payload["page"] == f"Café {i} ✓"
        else:
            assert payload["unstruct_event"]["data"]["data"] == {"seq": i, "note": expected}


def test_snowplow_tracker_with_the_key_in_the_collector_path_stores_every_event_once(
    running: Running, sdk_python: Path
) -> None:
    endpoint = f"{running.api}/t/{running.keys['snowplow']}"
    result = run_snowplow_client(sdk_python, endpoint, "snowplow")
    assert (result["sent"], result["failures"]) == (CALLS, [])
    eids = {eid: i for eid, i in result["eids"].items()}
    check_snowplow_stored(snowplow_stored(running.probe, eids), "snowplow", running.keys["snowplow"])


def test_snowplow_tracker_with_a_bearer_header_stores_every_event_once(
    running: Running, sdk_python: Path
) -> None:
    key = running.keys["snowplow-bearer"]
    result = run_snowplow_client(sdk_python, running.api, "snowplow-bearer", bearer=key, base64=False)
    assert (result["sent"], result["failures"]) == (CALLS, [])
    check_snowplow_stored(snowplow_stored(running.probe, result["eids"]), "snowplow-bearer", key)


def test_snowplow_tracker_retries_through_503s_and_stores_every_event_once(
    running: Running, sdk_python: Path
) -> None:
    proxy = FaultProxy(running.api)
    url = proxy.start()
    key = running.keys["snowplow-retry"]
    try:
        result = run_snowplow_client(sdk_python, f"{url}/t/{key}", "snowplow-retry")
    finally:
        proxy.stop()
    # THEN every event was sent in the end: the tracker's failures were the proxy's 503s, retried
    assert result["sent"] == CALLS and result["failures"]
    assert {"refused", "lost-answer", "forwarded"} <= set(proxy.seen)
    check_snowplow_stored(snowplow_stored(running.probe, result["eids"]), "snowplow-retry", key)


def test_snowplow_tracker_with_a_wrong_key_is_refused_for_good(running: Running, sdk_python: Path) -> None:
    started = time.monotonic()
    result = run_snowplow_client(sdk_python, f"{running.api}/t/slk_{'S' * 43}", "snowplow-wrong", n=3)
    # THEN a 401, which the tracker does not retry: nothing sent, one failure, no waiting on retries
    assert (result["sent"], result["failures"]) == (0, [3])
    assert time.monotonic() - started < 60
