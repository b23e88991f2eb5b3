"""``python -m local``: run the pipeline locally and look at what landed, without writing boto3."""

from __future__ import annotations

import argparse
import gzip
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from core import aws
from local import dlq
from local import stack as stk
from local.inspect import StackInspector, stored_record_of

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus"


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _connect(state_dir: Path) -> stk.Stack:
    stack = stk.Stack.load(state_dir / "stack.json")
    stk.use_fake_credentials()
    os.environ["AWS_ENDPOINT_URL"] = stack.endpoint_url
    os.environ["AWS_DEFAULT_REGION"] = stack.region
    aws.client.cache_clear()
    return stack


# --- run --------------------------------------------------------------------------------------

QUOTA_OPTIONS = {  # option -> the ingest function's variable (core/settings.py)
    "tenant_records_per_second": "TENANT_RECORDS_PER_SECOND",
    "tenant_records_burst": "TENANT_RECORDS_BURST",
    "tenant_bytes_per_second": "TENANT_BYTES_PER_SECOND",
    "tenant_bytes_burst": "TENANT_BYTES_BURST",
    "tenant_requests_per_second": "TENANT_REQUESTS_PER_SECOND",
    "tenant_requests_burst": "TENANT_REQUESTS_BURST",
}


def _quota_env(args: argparse.Namespace) -> dict[str, str]:
    """The default per-tenant quotas given on the command line (the variables themselves work too)."""
    return {
        var: str(getattr(args, opt))
        for opt, var in QUOTA_OPTIONS.items()
        if getattr(args, opt, None) is not None
    }


def cmd_run(args: argparse.Namespace) -> int:
    from local.emulator import PortInUse
    from local.runtime import LocalRuntime, RuntimeOptions

    options = RuntimeOptions(
        port=args.port, emulator_port=args.emulator_port, auth=args.auth, verbose=args.verbose,
        worker_concurrency=args.worker_concurrency, visibility_timeout=args.visibility_timeout,
        state_dir=args.state_dir, extra_env=_quota_env(args),
    )  # fmt: skip
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    _out("starting the local pipeline ...")
    try:
        runtime = LocalRuntime(options)
        runtime.__enter__()
    except PortInUse as exc:
        _out(f"error: {exc}")
        return 2
    try:
        s = runtime.stack
        assert s is not None
        _out(f"""
sluice is running locally.
  HTTP API        {runtime.api_url}   (POST /events, POST /ingest, GET /health{", API keys on" if args.auth else ""})
  AWS emulator    {s.endpoint_url}   ({"started here" if runtime.emulator and runtime.emulator.owned else "reused"})
  queue / DLQ     {s.queue_url}
                  {s.dlq_url}
  stream          {s.stream_name}
  tables          {s.table_name}, {s.rollup_table_name}, {s.api_keys_table_name}
  archive bucket  {s.archive_bucket}

Try:
  curl -s -X POST {runtime.api_url}/events -H 'content-type: application/json' -H 'x-tenant-id: acme' \\
       -d '{{"type": "signup", "user": "ada@example.com"}}'
  {sys.executable.replace(str(REPO) + "/", "")} -m local events list --tenant acme
Ctrl-C stops everything.
""")  # fmt: skip
        last = None
        while not stop.wait(5.0):
            stats = runtime.stats()
            line = (
                f"requests {stats['http_requests']} | worker batches {stats['worker'].get('invocations', 0)} "
                f"records {stats['worker'].get('records', 0)} failed {stats['worker'].get('failed_records', 0)}"
            )
            if line != last:
                _out(time.strftime("%H:%M:%S ") + line)
                last = line
    finally:
        _out("stopping ...")
        runtime.stop()
        _out("stopped.")
    return 0


# --- looking at what landed -------------------------------------------------------------------


def _json_default(obj: Any) -> Any:
    from decimal import Decimal

    if isinstance(obj, Decimal):
        return int(obj) if obj == obj.to_integral_value() else float(obj)
    if isinstance(obj, set):
        return sorted(obj)
    raise TypeError


def cmd_events_list(args: argparse.Namespace) -> int:
    stack = _connect(args.state_dir)
    page = aws.client("dynamodb").query(
        TableName=stack.table_name, KeyConditionExpression="tenant_id = :t",
        ExpressionAttributeValues={":t": {"S": args.tenant}}, ScanIndexForward=False, Limit=args.limit,
    )  # fmt: skip
    items = [stored_record_of(i) for i in page.get("Items", [])]
    if args.json:
        for item in items:
            _out(orjson.dumps(item, default=_json_default).decode())
        return 0
    if not items:
        _out(f"no events stored for tenant {args.tenant!r} yet")
        return 0
    _out(f"{'event_id':36}  {'kind':5}  {'received_at':27}  {'type':28}  summary")
    for item in items:
        summary = item.get("text") or orjson.dumps(item.get("payload", {}), default=_json_default).decode()
        _out(f"{item['event_id']:36}  {item.get('kind', ''):5}  {item.get('received_at', ''):27}  "
             f"{str(item.get('type') or '')[:28]:28}  {summary[:70]}")  # fmt: skip
    return 0


def cmd_events_get(args: argparse.Namespace) -> int:
    stack = _connect(args.state_dir)
    got = aws.client("dynamodb").get_item(
        TableName=stack.table_name, Key={"tenant_id": {"S": args.tenant}, "event_id": {"S": args.event_id}}
    )
    if "Item" not in got:
        _out(f"no event {args.event_id} for tenant {args.tenant!r}")
        return 1
    _out(
        orjson.dumps(
            stored_record_of(got["Item"]), default=_json_default, option=orjson.OPT_INDENT_2
        ).decode()
    )
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    stack = _connect(args.state_dir)
    for key, value in StackInspector.for_stack(stack).stats().items():
        _out(f"{key:22} {value}")
    return 0


def cmd_dlq_show(args: argparse.Namespace) -> int:
    stack = _connect(args.state_dir)
    letters = StackInspector.for_stack(stack).dead_letters(args.limit)
    if not letters:
        _out("the DLQ is empty")
    for d in letters:
        _out(
            f"{d.message_id}  receives={d.receive_count}  tenant={d.tenant_id}  event_id={d.event_id}  {d.preview}"
        )
    return 0


def cmd_dlq_redrive(args: argparse.Namespace) -> int:
    stack = _connect(args.state_dir)
    dry = not args.yes
    n = 0
    for verb, message_id in dlq.redrive(aws.client("sqs"), stack.dlq_url, stack.queue_url, dry_run=dry,
                                        rate_per_second=args.rate, max_messages=args.max):  # fmt: skip
        _out(f"{verb} {message_id}")
        n += 1
    _out(f"{n} message(s) {'would be moved (dry run: add --yes to move them)' if dry else 'moved'}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from local import replay

    stack = _connect(args.state_dir)
    start, end = replay.parse_hour(args.from_hour), replay.parse_hour(args.to_hour or args.from_hour)
    stream = args.stream or stack.stream_name
    report = replay.replay(aws.client("s3"), aws.client("kinesis"), stack.archive_bucket, stream, args.tenant,
                           start, end, dry_run=args.dry_run, rate_per_second=args.rate,
                           partition_by=os.environ.get("PARTITION_KEY", "event_id"))  # fmt: skip
    verb = "would replay" if args.dry_run else "replayed"
    _out(f"{verb} {report.records if args.dry_run else report.put} record(s) of tenant {args.tenant!r} from "
         f"{report.objects} archive object(s), {start:%Y-%m-%dT%H} to {end:%Y-%m-%dT%H} UTC, onto {stream}"
         + (f"; {report.duplicates_skipped} duplicate line(s) skipped" if report.duplicates_skipped else ""))  # fmt: skip
    for event_id, code in sorted(report.failed.items()):
        _out(f"failed {event_id} {code}")
    return 1 if report.failed else 0


def cmd_keys(args: argparse.Namespace) -> int:
    stack = _connect(args.state_dir)
    os.environ["API_KEYS_TABLE_NAME"] = stack.api_keys_table_name
    from ingest.keys_cli import main as keys_main

    return int(keys_main(args.rest))


# --- demo -------------------------------------------------------------------------------------


def _post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the local API
            return response.status, orjson.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, orjson.loads(exc.read() or b"{}")


@dataclass(frozen=True)
class DemoData:
    """What the demo posts: webhook deliveries (file name or label, X-GitHub-Event, body) and log lines."""

    source: str
    webhooks: list[tuple[str, str, bytes]]
    log_lines: list[bytes]


def demo_data(corpus: Path, synthetic: bool = False, seed: int | None = None) -> DemoData:
    """Real files of the shared corpus when it is there (and ``synthetic`` is not asked for), else
    generated GitHub deliveries and log lines (``local.synthetic``)."""
    hooks, logs = corpus / "webhooks" / "github", corpus / "logs" / "Apache_2k.log"
    if not synthetic and hooks.is_dir() and logs.exists():
        names = ("issues.opened.payload.json", "push.payload.json", "ping.payload.json")
        webhooks = [(n, n.split(".", 1)[0], (hooks / n).read_bytes()) for n in names if (hooks / n).exists()]
        return DemoData(f"the shared corpus at {corpus}", webhooks, logs.read_bytes().split(b"\n")[:200])
    import random

    from local import synthetic as syn

    rng = random.Random(seed)
    deliveries = [syn.github_delivery(rng, event) for event in ("issues", "push", "pull_request", "ping")]
    webhooks = [(f"synthetic {d.event}", d.event, d.body) for d in deliveries]
    lines = [line.encode() for line in syn.log_lines(rng, 200)]
    why = "asked for" if synthetic else f"{corpus} not found"
    return DemoData(f"synthetic GitHub webhooks and Apache/syslog lines ({why})", webhooks, lines)


def cmd_demo(args: argparse.Namespace) -> int:
    url = args.url.rstrip("/")
    tenant = "demo"
    sent: list[str] = []
    data = demo_data(args.corpus, args.synthetic, args.seed)
    _out(f"posting {data.source}")
    for label, event, body in data.webhooks:
        status, receipt = _post(f"{url}/events", body, {
            "content-type": "application/json", "x-github-event": event, "x-tenant-id": tenant,
            "x-github-delivery": f"demo-{label.replace(' ', '-')}", "user-agent": "GitHub-Hookshot/demo"})  # fmt: skip
        _out(f"POST /events  {label:40} -> {status} {receipt.get('accepted', receipt.get('detail'))}")
        sent += receipt.get("event_ids", [])
    lines = data.log_lines
    status, receipt = _post(f"{url}/ingest", gzip.compress(b"\n".join(lines)), {
        "content-type": "text/plain", "content-encoding": "gzip", "x-tenant-id": tenant})  # fmt: skip
    label = f"{len(lines)} log lines, gzip"
    _out(f"POST /ingest  {label:40} -> {status} accepted {receipt.get('accepted')}")
    sent += receipt.get("event_ids", [])
    batch = b'{"type":"page_view","path":"/"}\n{"type":"click","user":"grace@example.com"}\nnot json\n'
    status, receipt = _post(
        f"{url}/events", batch, {"content-type": "application/x-ndjson", "x-tenant-id": tenant}
    )
    _out(f"POST /events  {'NDJSON with one bad line':40} -> {status} accepted {receipt.get('accepted')}, "
         f"rejected {[(e['index'], e['code']) for e in receipt.get('errors', [])]}")  # fmt: skip
    sent += receipt.get("event_ids", [])
    status, problem = _post(f"{url}/events", b"{oops", {"content-type": "application/json"})
    _out(f"POST /events  {'malformed JSON':40} -> {status} {problem.get('code')}")
    stack = _connect(args.state_dir)
    inspector = StackInspector.for_stack(stack)
    wanted = {(tenant, event_id) for event_id in sent}
    deadline = time.monotonic() + 60
    found = 0
    while time.monotonic() < deadline:
        found = len(inspector.timestamps(wanted))
        if found == len(wanted):
            break
        time.sleep(1)
    _out(f"\n{found} of {len(wanted)} accepted records are in DynamoDB. A few of them:\n")
    cmd_events_list(argparse.Namespace(state_dir=args.state_dir, tenant=tenant, limit=5, json=False))
    return 0 if found == len(wanted) else 1


def cmd_synthetic(args: argparse.Namespace) -> int:
    import random

    from local import synthetic as syn

    rng = random.Random(args.seed)
    if args.kind == "logs":
        for line in syn.log_lines(rng, args.count):
            _out(line)
    else:
        _out(syn.github_delivery(rng, args.kind).body.decode())
    return 0


# --- wiring -----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m local", description=__doc__)
    parser.add_argument("--state-dir", type=Path, default=Path(".local"), help="where `run` keeps its state")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the whole pipeline locally (foreground; Ctrl-C stops it)")
    run.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    run.add_argument("--emulator-port", type=int, default=4566)
    run.add_argument("--auth", action="store_true", help="require API keys (the deployed default)")
    run.add_argument("--worker-concurrency", type=int, default=None)
    run.add_argument(
        "--visibility-timeout", type=int, default=None, help="seconds (default: from the wiring)"
    )
    run.add_argument("--verbose", action="store_true", help="show handler logs and EMF metrics")
    for option, variable in QUOTA_OPTIONS.items():
        run.add_argument(
            "--" + option.replace("_", "-"), type=float, default=None,
            help=f"default per-tenant quota ({variable}; 0: none)",
        )  # fmt: skip
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser(
        "demo",
        help="post webhooks and logs (the shared corpus, or synthetic) to a running stack, show what landed",
    )
    demo.add_argument("--url", default=f"http://127.0.0.1:{os.environ.get('PORT', '8080')}")
    demo.add_argument(
        "--corpus", type=Path, default=CORPUS, help="the shared corpus (default: ../shared/corpus)"
    )
    demo.add_argument(
        "--synthetic", action="store_true", help="post synthetic data even when the corpus is there"
    )
    demo.add_argument("--seed", type=int, default=None, help="seed of the synthetic data")
    demo.set_defaults(func=cmd_demo)

    events = sub.add_parser("events", help="stored events").add_subparsers(
        dest="events_command", required=True
    )
    ls = events.add_parser(
        "list", help="a tenant's events, by event id descending (server-assigned ids are time-ordered)"
    )
    ls.add_argument("--tenant", required=True)
    ls.add_argument("--limit", type=int, default=20)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_events_list)
    get = events.add_parser("get", help="one stored event")
    get.add_argument("--tenant", required=True)
    get.add_argument("event_id")
    get.set_defaults(func=cmd_events_get)

    d = sub.add_parser("dlq", help="the dead-letter queue").add_subparsers(dest="dlq_command", required=True)
    show = d.add_parser("show", help="peek at dead letters")
    show.add_argument("--limit", type=int, default=10)
    show.set_defaults(func=cmd_dlq_show)
    rd = d.add_parser("redrive", help="move dead letters back to the queue (dry run unless --yes)")
    rd.add_argument("--yes", action="store_true")
    rd.add_argument("--rate", type=float, default=50.0, help="messages per second")
    rd.add_argument("--max", type=int, default=None)
    rd.set_defaults(func=cmd_dlq_redrive)

    rp = sub.add_parser(
        "replay", help="put archived records of a tenant back on the stream (redacted copies)"
    )
    rp.add_argument("--tenant", required=True)
    rp.add_argument("--from", dest="from_hour", required=True, help="first hour, UTC: 2026-11-22T10")
    rp.add_argument("--to", dest="to_hour", default=None, help="last hour, included (default: --from)")
    rp.add_argument("--dry-run", action="store_true", help="count what would be replayed, put nothing")
    rp.add_argument("--rate", type=float, default=500.0, help="records per second")
    rp.add_argument("--stream", default=None, help="target stream (default: the pipeline's own)")
    rp.set_defaults(func=cmd_replay)

    syn = sub.add_parser(
        "synthetic", help="print synthetic log lines or a GitHub webhook body (pipe it to curl)"
    )
    syn.add_argument("kind", choices=["logs", "push", "issues", "pull_request", "ping"])
    syn.add_argument("--count", type=int, default=1000, help="log lines to print")
    syn.add_argument("--seed", type=int, default=None)
    syn.set_defaults(func=cmd_synthetic)

    sub.add_parser("stats", help="queue depths and stored items").set_defaults(func=cmd_stats)
    keys = sub.add_parser("keys", help="API keys: create --tenant T | list | revoke KEY_ID")
    keys.add_argument("rest", nargs=argparse.REMAINDER)
    keys.set_defaults(func=cmd_keys)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except FileNotFoundError as exc:
        _out(f"error: {exc}")
        return 2
