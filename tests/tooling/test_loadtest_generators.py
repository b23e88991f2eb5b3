"""Load-test bodies: the ingest service must accept every record each generator claims to send."""

from __future__ import annotations

import base64
import itertools
import random
from collections import Counter
from pathlib import Path

import orjson
import pytest

from core.settings import IngestSettings
from ingest.service import HttpRequest, IngestService
from loadtest import generators as gen
from tests.support.fakes import MemorySink

SETTINGS = IngestSettings.from_env({"QUEUE_URL": "q", "STREAM_NAME": "s"})


def ingest(body: gen.Body, route: str) -> dict[str, object]:
    """Send ``body`` through the real ingest service (in-memory sinks) and return the receipt."""
    service = IngestService(SETTINGS, [MemorySink("sqs"), MemorySink("kinesis", batch_size=500)])
    headers = {k.lower(): v for k, v in body.headers.items()} | {"x-tenant-id": "lt-test-t00"}
    gzipped = headers.get("content-encoding") == "gzip"
    text = base64.b64encode(body.data).decode() if gzipped else body.data.decode()
    request = HttpRequest(route=route, headers=headers, body=text, is_base64=gzipped, request_id="r-1")
    return service.ingest(request, "event" if route == "POST /events" else "log").body


def bodies(corpus: gen.Corpus) -> list[tuple[str, str, gen.Body]]:
    f = gen.BodyFactory(corpus, random.Random(7))
    return [
        ("single", "POST /events", f.single_event()),
        ("webhook", "POST /events", f.webhook()),
        ("batch", "POST /events", f.event_batch(25)),
        ("gzip batch", "POST /events", gen.gzip_body(f.event_batch(25))),
        ("text lines", "POST /ingest", f.text_logs(50)),
        ("ndjson gzip", "POST /ingest", gen.gzip_body(f.ndjson_logs(50))),
    ]


@pytest.mark.parametrize("index", range(6))
def test_synthetic_bodies_are_accepted_in_full(index: int) -> None:
    # GIVEN a body built without the corpus
    name, route, body = bodies(gen.Corpus())[index]
    # WHEN the ingest service reads it
    receipt = ingest(body, route)
    # THEN every record the generator counted is accepted, none rejected
    assert receipt["accepted"] == body.records, name
    assert receipt["rejected"] == 0


def test_corpus_bodies_are_accepted_in_full(corpus: Path) -> None:
    loaded = gen.Corpus.load(corpus)
    assert loaded.webhooks and loaded.log_lines
    rng = random.Random(3)
    f = gen.BodyFactory(loaded, rng)
    # Every webhook file, and log windows starting anywhere (CRLF line ends, long HDFS lines).
    for hook in loaded.webhooks:
        assert ingest(gen.webhook_body(hook, rng), "POST /events")["accepted"] == 1, hook.event
    for _ in range(20):
        body = f.text_logs(50)
        assert body.records == 50
        assert ingest(body, "POST /ingest")["accepted"] == 50


def test_absent_corpus_is_empty_not_an_error(tmp_path: Path) -> None:
    assert gen.Corpus.load(tmp_path / "nowhere") == gen.Corpus()


@pytest.mark.parametrize("target", [512, 1024, 4096])
def test_events_are_about_the_intended_size(target: int) -> None:
    rng = random.Random(1)
    for maker in (gen.analytics_event, gen.telemetry_event):
        sizes = [len(orjson.dumps(maker(rng, target))) for _ in range(200)]
        assert all(0.9 * target <= s <= 1.05 * target for s in sizes), (
            maker.__name__,
            min(sizes),
            max(sizes),
        )


def test_webhook_deliveries_get_a_fresh_id_each_time() -> None:
    # A repeated delivery id would be de-duplicated by design and look like a lost record.
    rng = random.Random(5)
    hook = gen.synthetic_webhook(rng)
    ids = {gen.webhook_body(hook, rng).headers["X-GitHub-Delivery"] for _ in range(100)}
    assert len(ids) == 100


def test_run_tenants_are_valid_unique_and_carry_the_run_id() -> None:
    from core.tenancy import is_valid_tenant_id

    run_id = gen.new_run_id()
    tenants = gen.run_tenants(run_id, 12)
    assert len(set(tenants)) == 12
    assert all(is_valid_tenant_id(t) and run_id in t for t in tenants)
    assert gen.new_run_id() != run_id


def test_zipf_weights_are_normalized_and_decreasing() -> None:
    w = gen.zipf_weights(8, 1.1)
    assert sum(w) == pytest.approx(1.0)
    assert all(a > b for a, b in itertools.pairwise(w))
    # 1/k^s: the first tenant sends 2^1.1 times what the second does
    assert w[0] / w[1] == pytest.approx(2**1.1)


def test_tenant_mix_follows_the_zipf_shares() -> None:
    # GIVEN 8 tenants with Zipf(1.1) shares
    mix = gen.TenantMix.for_run("abc", 8, 1.1)
    rng = random.Random(11)
    # WHEN 40,000 requests pick a tenant
    counts = Counter(mix.pick(rng) for _ in range(40_000))
    # THEN each tenant's share is within 1.5 points of its weight, the head tenant sends the most
    for tenant, weight in zip(mix.tenants, mix.weights, strict=True):
        assert counts[tenant] / 40_000 == pytest.approx(weight, abs=0.015)
    assert counts.most_common(1)[0][0] == mix.tenants[0]
    assert counts[mix.tenants[0]] > 5 * counts[mix.tenants[-1]]


def test_one_tenant_mix_always_picks_it() -> None:
    mix = gen.TenantMix.for_run("abc", 1)
    rng = random.Random(0)
    assert {mix.pick(rng) for _ in range(100)} == {"lt-abc-t00"}
