"""``sluice`` (and ``python -m local``): run the pipeline locally, and operate a stack, local or deployed.

Which stack the operator commands (``health``, ``stats``, ``events``, ``tail``, ``dlq``, ``replay``, ``keys``)
act on:

- the local stack (the default): its state file under ``--state-dir``, default ``$SLUICE_STATE_DIR`` or
  the repository's ``.local/``, so the command works from any directory; the emulator's dummy
  credentials only;
- a deployment: ``--deployment`` reads ``terraform output -json`` of ``infra/`` (the current workspace),
  ``--outputs FILE`` a saved copy of it; the user's normal AWS credentials, profile and
  ``AWS_ENDPOINT_URL`` apply, and the region is the stack's (its ``region`` output).

What comes from stored records (text, payloads, ids) is printed with control characters escaped
(``\\x1b`` instead of a raw ESC), so a record cannot drive the operator's terminal; ``--json`` prints
JSON for scripts.
"""

from __future__ import annotations

import argparse
import gzip
import itertools
import os
import signal
import subprocess
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
from core.terminal import safe
from local import dlq
from local import stack as stk
from local.inspect import StackInspector, stored_record_of

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "corpus"


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _dumps(obj: Any, indent: bool = False) -> str:
    # JSON escapes C0 controls itself; C1 controls and bidi overrides are escaped on top.
    text = orjson.dumps(obj, default=_json_default, option=orjson.OPT_INDENT_2 if indent else 0).decode()
    return safe(text)


def default_state_dir() -> Path:
    """``$SLUICE_STATE_DIR``, else the repository's ``.local/`` (where ``make run`` keeps the stack)."""
    return Path(os.environ.get("SLUICE_STATE_DIR") or REPO / ".local")


def _output_values(doc: dict[str, Any]) -> dict[str, Any]:
    """``terraform output -json`` ({name: {"value": ...}}) or a plain {name: value} mapping."""
    return {k: v["value"] if isinstance(v, dict) and "value" in v else v for k, v in doc.items()}


def stack_from_outputs(doc: dict[str, Any], endpoint_url: str = "") -> stk.Stack:
    """The resource names of a deployment, from its Terraform outputs."""
    out = _output_values(doc)
    missing = [
        k
        for k in ("queue_url", "dlq_url", "stream_name", "table_name", "api_keys_table_name")
        if not out.get(k)
    ]
    if missing:
        raise ValueError(f"the Terraform outputs lack {', '.join(missing)}: is this sluice's infra/ state?")
    return stk.Stack(
        endpoint_url=endpoint_url, region=str(out.get("region") or os.environ.get("AWS_DEFAULT_REGION") or ""),
        prefix=str(out["table_name"]).removesuffix("-events"), queue_url=out["queue_url"], queue_arn="",
        dlq_url=out["dlq_url"], stream_name=out["stream_name"], stream_arn=str(out.get("stream_arn") or ""),
        stream_failures_url=str(out.get("stream_failures_queue_url") or ""), table_name=out["table_name"],
        rollup_table_name=str(out.get("rollup_table_name") or ""), api_keys_table_name=out["api_keys_table_name"],
        archive_bucket=str(out.get("archive_bucket") or ""), api_url=str(out.get("api_url") or ""),
        tenant_partitions=int(out.get("tenant_partitions") or 1),
    )  # fmt: skip


def _terraform_outputs(env: str | None) -> dict[str, Any]:
    infra = REPO / "infra"
    environ = dict(os.environ)
    if env:
        environ["TF_WORKSPACE"] = env  # tf.sh keeps one workspace per ENV
    try:
        done = subprocess.run(  # noqa: S603 - fixed argv, no shell
            ["terraform", f"-chdir={infra}", "output", "-json"],  # noqa: S607 - terraform from PATH
            capture_output=True, check=True, text=True, timeout=120, env=environ,
        )  # fmt: skip
    except FileNotFoundError:
        raise FileNotFoundError(
            "terraform not found on PATH (needed by --deployment; or use --outputs FILE)"
        ) from None
    except subprocess.CalledProcessError as exc:
        raise FileNotFoundError(f"`terraform output -json` in {infra} failed: {exc.stderr.strip()}") from None
    doc: dict[str, Any] = orjson.loads(done.stdout or "{}")
    if not doc:
        raise FileNotFoundError(f"no Terraform outputs in {infra}: deploy first (`make deploy ENV=...`)")
    return doc


def _connect(args: argparse.Namespace) -> stk.Stack:
    """The stack the command acts on (module docstring), with the environment set for its clients."""
    outputs_file: Path | None = getattr(args, "outputs", None)
    if outputs_file is not None or getattr(args, "deployment", False):
        doc = (
            orjson.loads(outputs_file.read_bytes())
            if outputs_file is not None
            else _terraform_outputs(getattr(args, "env", None))
        )
        stack = stack_from_outputs(doc, os.environ.get("AWS_ENDPOINT_URL", ""))
        if stack.region:
            os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"] = stack.region
        args.deployed = True
    else:
        args.deployed = False
        stack = stk.Stack.load(Path(args.state_dir) / "stack.json")
        stk.use_fake_credentials()
        os.environ["AWS_ENDPOINT_URL"] = stack.endpoint_url
        os.environ["AWS_DEFAULT_REGION"] = stack.region
    aws.client.cache_clear()
    return stack


def _inspector(args: argparse.Namespace, stack: stk.Stack) -> StackInspector:
    if not getattr(args, "deployed", False):
        return StackInspector.for_stack(stack)
    # A deployment: the caller's own credentials (profile, SSO, environment).
    return StackInspector(stack.queue_url, stack.dlq_url, stack.table_name, endpoint_url=stack.endpoint_url or None,
                          region=stack.region or None, stream_name=stack.stream_name,
                          stream_failures_url=stack.stream_failures_url or None,
                          rollup_table_name=stack.rollup_table_name or None,
                          archive_bucket=stack.archive_bucket or None,
                          api_keys_table_name=stack.api_keys_table_name or None,
                          default_partitions=stack.tenant_partitions)  # fmt: skip


def _wants_json(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "json", False) or getattr(args, "json_out", False))


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
        python = sys.executable.replace(str(REPO) + "/", "")
        # With API keys on, a request must carry a key: the hint creates one first.
        first = (
            f"KEY=$({python} -m local keys create --tenant acme | grep -o 'slk_[A-Za-z0-9_-]*')\n  "
            if args.auth
            else ""
        )
        credential = '"authorization: Bearer $KEY"' if args.auth else "'x-tenant-id: acme'"
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
  {first}curl -s -X POST {runtime.api_url}/events -H 'content-type: application/json' -H {credential} \\
       -d '{{"type": "signup", "user": "ada@example.com"}}'
  {python} -m local events list --tenant acme
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
    stack = _connect(args)
    newest = itertools.islice(
        _inspector(args, stack).tenant_items(args.tenant, page_size=args.limit), args.limit
    )
    items = [stored_record_of(i) for i in newest]
    if _wants_json(args):
        for item in items:
            _out(_dumps(item))
        return 0
    if not items:
        _out(f"no events stored for tenant {args.tenant!r} yet")
        return 0
    _out(f"{'event_id':36}  {'kind':5}  {'received_at':27}  {'type':28}  summary")
    for item in items:
        _out(_event_line(item))
    return 0


def _event_line(item: dict[str, Any]) -> str:
    summary = item.get("text") or orjson.dumps(item.get("payload", {}), default=_json_default).decode()
    return safe(f"{item['event_id']:36}  {item.get('kind', ''):5}  {item.get('received_at', ''):27}  "
                f"{str(item.get('type') or '')[:28]:28}  {summary[:70]}")  # fmt: skip


def cmd_tail(args: argparse.Namespace) -> int:
    """Follow a tenant's stored (redacted) records: poll the newest ``--window`` items, print unseen ones.

    The table, not the stream: the stream carries records before redaction. Server-assigned ids are
    time-ordered; a record whose id comes from a client identity (UUIDv5) sorts anywhere and is shown
    only if it falls among the newest ``--window`` ids when it is stored.
    """
    stack = _connect(args)
    inspector = _inspector(args, stack)
    seen: set[str] = set()
    first = True
    stop_at = None if args.seconds is None else time.monotonic() + args.seconds
    while True:
        newest = itertools.islice(inspector.tenant_items(args.tenant, page_size=args.window), args.window)
        fresh = [r for r in (stored_record_of(i) for i in newest) if r["event_id"] not in seen]
        seen.update(r["event_id"] for r in fresh)
        if not first or args.backlog:
            for record in reversed(fresh):  # oldest first, as a log reads
                _out(_dumps(record) if _wants_json(args) else _event_line(record))
        first = False
        if stop_at is not None and time.monotonic() >= stop_at:
            return 0
        try:
            time.sleep(args.interval)
        except KeyboardInterrupt:
            return 0


def cmd_events_get(args: argparse.Namespace) -> int:
    stack = _connect(args)
    item = _inspector(args, stack).get_event(args.tenant, args.event_id)
    if item is None:
        _out(safe(f"no event {args.event_id} for tenant {args.tenant!r}"))
        return 1
    _out(_dumps(stored_record_of(item), indent=not _wants_json(args)))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    stack = _connect(args)
    stats = _inspector(args, stack).stats()
    if _wants_json(args):
        _out(_dumps(stats))
        return 0
    for key, value in stats.items():
        _out(f"{key:22} {value}")
    return 0


def cmd_health(args: argparse.Namespace) -> int:
    stack = _connect(args)
    if not stack.api_url:
        _out("error: the stack has no API URL (local: is `make run` running? deployment: the api_url output)")
        return 2
    url = stack.api_url.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - the stack's own API
            status, body = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        status, body = 0, str(exc).encode()
    if _wants_json(args):
        _out(_dumps({"url": url, "status": status, "body": body.decode(errors="replace")}))
    else:
        _out(safe(f"{url} -> {status} {body.decode(errors='replace')[:200]}"))
    return 0 if status == 200 else 1


def cmd_dlq_show(args: argparse.Namespace) -> int:
    stack = _connect(args)
    letters = _inspector(args, stack).dead_letters(args.limit)
    if _wants_json(args):
        for d in letters:
            _out(_dumps(d.__dict__))
        return 0
    if not letters:
        _out("the DLQ is empty")
    for d in letters:
        _out(safe(
            f"{d.message_id}  receives={d.receive_count}  tenant={d.tenant_id}  event_id={d.event_id}  {d.preview}"
        ))  # fmt: skip
    return 0


def cmd_dlq_redrive(args: argparse.Namespace) -> int:
    stack = _connect(args)
    dry = not args.yes
    n = 0
    for verb, message_id in dlq.redrive(aws.client("sqs"), stack.dlq_url, stack.queue_url, dry_run=dry,
                                        rate_per_second=args.rate, max_messages=args.max):  # fmt: skip
        _out(safe(f"{verb} {message_id}"))
        n += 1
    _out(f"{n} message(s) {'would be moved (dry run: add --yes to move them)' if dry else 'moved'}")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from local import replay

    stack = _connect(args)
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
        _out(safe(f"failed {event_id} {code}"))
    return 1 if report.failed else 0


def cmd_keys(args: argparse.Namespace) -> int:
    stack = _connect(args)
    os.environ["API_KEYS_TABLE_NAME"] = stack.api_keys_table_name
    from ingest.keys_cli import main as keys_main

    rest = list(args.rest)
    if _wants_json(args) and rest[:1] == ["list"]:
        rest.append("--json")
    return int(keys_main(rest))


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
    stack = _connect(args)
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
    cmd_events_list(argparse.Namespace(state_dir=args.state_dir, tenant=tenant, limit=5, json=False))  # local
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


def build_parser(prog: str = "sluice") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--state-dir", type=Path, default=default_state_dir(),
        help="where `run` keeps the local stack's state (default: $SLUICE_STATE_DIR or the repository's .local/)",
    )  # fmt: skip
    target = parser.add_mutually_exclusive_group()
    target.add_argument(
        "--deployment", action="store_true",
        help="act on the deployed stack: `terraform output -json` of infra/ and your AWS credentials",
    )  # fmt: skip
    parser.add_argument(
        "--env", default=None, metavar="ENV",
        help="with --deployment: the Terraform workspace (make deploy ENV=...); default: the selected one",
    )  # fmt: skip
    target.add_argument(
        "--outputs", type=Path, default=None, metavar="FILE",
        help="act on the deployment described by FILE (saved `terraform output -json`)",
    )  # fmt: skip
    parser.add_argument("--json", dest="json_out", action="store_true", help="JSON output, for scripts")
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

    tail = sub.add_parser(
        "tail", help="follow a tenant's stored (redacted) records as they land (Ctrl-C stops)"
    )
    tail.add_argument("--tenant", required=True)
    tail.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
    tail.add_argument("--window", type=int, default=100, help="newest items read per poll")
    tail.add_argument("--backlog", action="store_true", help="also print what is already stored")
    tail.add_argument("--for", dest="seconds", type=float, default=None, help="stop after this many seconds")
    tail.set_defaults(func=cmd_tail)
    sub.add_parser("stats", help="queue depths and stored items").set_defaults(func=cmd_stats)
    sub.add_parser("health", help="GET /health of the stack's API").set_defaults(func=cmd_health)
    keys = sub.add_parser(
        "keys",
        help="API keys: create --tenant T | list [--tenant T] | revoke --key-id=ID (or: revoke -- ID) | quota set|show | partitions set|show",
    )
    keys.add_argument("rest", nargs=argparse.REMAINDER)
    keys.set_defaults(func=cmd_keys)
    return parser


def main(argv: list[str] | None = None, prog: str = "sluice") -> int:
    """The ``sluice`` console command (``python -m local`` runs the same)."""
    args = build_parser(prog).parse_args(argv)
    try:
        return int(args.func(args))
    except (FileNotFoundError, ValueError) as exc:
        hint = "" if getattr(args, "deployed", True) else " (a deployment: --deployment or --outputs FILE)"
        _out(safe(f"error: {exc}{hint}"))
        return 2
