"""Event sources: local stand-ins for Lambda's SQS and Kinesis event source mappings.

They follow the documented semantics closely enough that the handlers cannot tell the difference:
- SQS: batches of up to ``batch_size`` gathered within ``maximum_batching_window_seconds``, at most
  ``maximum_concurrency`` invocations at once; with ReportBatchItemFailures only the messages *not*
  named in ``batchItemFailures`` are deleted (an invalid identifier fails the whole batch, as on AWS);
  failed messages reappear after the visibility timeout and the queue's redrive policy moves them to
  the DLQ after ``maxReceiveCount`` receives.
- Kinesis: one poller per shard and consumer; a partial failure checkpoints at the lowest failed
  sequence number and retries from there; a function error bisects the batch when
  ``bisect_batch_on_function_error`` is set; after ``maximum_retry_attempts`` (or past
  ``maximum_record_age_in_seconds``) the batch's description goes to the on-failure destination
  and the shard moves on.
"""

from __future__ import annotations

import base64
import hashlib
import importlib
import importlib.util
import queue
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson
from aws_lambda_powertools import Logger

from core import aws
from core.wiring import QueueWiring, StreamConsumerWiring
from local.patches import powertools_current_event

# Its own service name: Powertools loggers of one service share a level, and the handlers' must follow
# POWERTOOLS_LOG_LEVEL, which the runtime sets after this module is imported.
logger = Logger(service="sluice-local-runtime", level="WARNING")
Handler = Callable[[dict[str, Any], Any], Any]
DELETE_BATCH = 10  # DeleteMessageBatch's limit
RECEIVE_BATCH = 10  # ReceiveMessage's MaxNumberOfMessages limit


def load_handler(dotted: str) -> Handler:
    """``"consumers.worker.handler.lambda_handler"`` -> the function, imported the way Lambda does."""
    module, _, name = dotted.rpartition(".")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def load_container(dotted: str) -> Handler:
    """A handler in a private copy of its module: one Lambda execution environment.

    Lambda runs one invocation at a time per environment, so handler modules keep per-invocation state
    at module level (Powertools' resolver holds the current event, a BatchProcessor its records).
    Local mode runs invocations concurrently in one process; giving each concurrent slot its own copy
    of the handler module is what keeps them apart, as separate environments are on AWS.
    """
    module_name, _, name = dotted.rpartition(".")
    # The copy is not registered in sys.modules, but code run while it loads looks its module up there
    # by name (dataclasses does, for string annotations): the canonical module must be importable first.
    importlib.import_module(module_name)
    spec = importlib.util.find_spec(module_name)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot find handler module {module_name!r}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    powertools_current_event.isolate_module(module)
    return getattr(module, name)  # type: ignore[no-any-return]


class ContainerPool:
    """At most ``size`` execution environments of one function; an invocation takes a free one.

    Environments are created on first need (a cold start) and reused after; when all are busy the
    caller waits, as a function at its concurrency limit would throttle. The free environment used last
    is taken first, as Lambda keeps sending a steady trickle to the same warm environment rather than
    rotating it over every one a past burst created: per-environment state (caches, quota leases) then
    behaves as it does on AWS.
    """

    def __init__(self, dotted: str, size: int) -> None:
        self.dotted, self.size = dotted, size
        self._free: queue.LifoQueue[Handler] = queue.LifoQueue()
        self._slots = threading.Semaphore(size)
        self._lock = threading.Lock()
        self.created = 0

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        with self._slots:
            try:
                handler = self._free.get_nowait()
            except queue.Empty:
                with self._lock:
                    self.created += 1
                handler = load_container(self.dotted)
            try:
                return handler(event, context)
            finally:
                self._free.put(handler)


@dataclass
class LambdaContext:
    """What a handler sees of its invocation (remaining time follows the function timeout)."""

    function_name: str
    timeout_seconds: int
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    started: float = field(default_factory=time.monotonic)

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:000000000000:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.timeout_seconds - (time.monotonic() - self.started)) * 1000))


@dataclass
class SourceStats:
    """Counters for the CLI, the load tests and the end-to-end test."""

    invocations: int = 0
    records: int = 0  # counted as an invocation starts
    failed_records: int = 0
    completed_records: int = 0  # of invocations that returned, not reported failed: done when counted
    errors: int = 0
    sent_to_failure_destination: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def snapshot(self) -> dict[str, int]:
        with self.lock:
            return {k: v for k, v in self.__dict__.items() if isinstance(v, int)}


class _Pollers:
    """The threads of one event source, started together and stopped together."""

    def __init__(self) -> None:
        self.stats = SourceStats()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def _spawn(self, target: Callable[..., None], name: str, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)


class SqsEventSource(_Pollers):
    """Polls one queue and invokes the worker handler like Lambda's SQS event source mapping."""

    def __init__(self, queue_url: str, queue_arn: str, handler: Handler, cfg: QueueWiring,
                 function_name: str = "worker", max_concurrency: int | None = None) -> None:  # fmt: skip
        self.queue_url, self.queue_arn, self.handler, self.cfg = queue_url, queue_arn, handler, cfg
        self.function_name = function_name
        self.concurrency = max_concurrency or cfg.maximum_concurrency
        super().__init__()
        self.region = queue_arn.split(":")[3] if queue_arn.count(":") >= 3 else "us-east-1"
        # The receives one batch sends together, and the deletes (threads start on first use).
        self._calls = ThreadPoolExecutor(
            max(1, -(-cfg.batch_size // RECEIVE_BATCH)), thread_name_prefix=f"sqs-{function_name}-calls"
        )
        self._deletes = ThreadPoolExecutor(
            max(1, -(-cfg.batch_size // DELETE_BATCH)), thread_name_prefix=f"sqs-{function_name}-deletes"
        )

    def start(self) -> None:
        for n in range(self.concurrency):
            self._spawn(self._run, f"sqs-{self.function_name}-{n}")

    def stop(self, timeout: float = 10.0) -> None:
        super().stop(timeout)
        self._calls.shutdown(wait=True)
        self._deletes.shutdown(wait=True)

    def _run(self) -> None:
        sqs = aws.client("sqs")
        while not self._stop.is_set():
            try:
                messages = self._collect(sqs)
                if messages:
                    self._invoke(sqs, messages)
            except Exception:  # the poller must outlive any one failure, as the managed one does
                logger.exception("sqs event source iteration failed")
                self._stop.wait(1.0)

    def _collect(self, sqs: Any) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        window_ends = None
        deep = False
        while len(messages) < self.cfg.batch_size and not self._stop.is_set():
            wanted = self.cfg.batch_size - len(messages)
            if deep and wanted > RECEIVE_BATCH:
                # The last receive came back full: the queue is deep, so the rest of the batch is asked
                # for at once, in receives of at most ten that never add up to more than the batch.
                sizes = [min(RECEIVE_BATCH, wanted - n) for n in range(0, wanted, RECEIVE_BATCH)]
                pages = list(self._calls.map(lambda n: self._receive(sqs, n, 0), sizes))
                got = [m for page in pages for m in page]
                deep = len(got) == wanted
            else:
                asked = min(RECEIVE_BATCH, wanted)
                got = self._receive(sqs, asked, 1 if not messages else 0)
                deep = len(got) == asked
            if got and window_ends is None:
                window_ends = time.monotonic() + self.cfg.maximum_batching_window_seconds
            known = {m["MessageId"] for m in messages}
            messages.extend(m for m in got if m["MessageId"] not in known)
            if window_ends is None:
                if not got:
                    return messages  # idle: let the loop check for stop, then poll again
                continue
            if time.monotonic() >= window_ends:
                break
            if not got:
                time.sleep(0.05)
        return messages

    def _receive(self, sqs: Any, count: int, wait: int) -> list[dict[str, Any]]:
        response = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=count, WaitTimeSeconds=wait,
                                       AttributeNames=["All"], MessageAttributeNames=["All"])  # fmt: skip
        return list(response.get("Messages", []))

    def _event(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": lambda_message_attributes(m.get("MessageAttributes", {})),
                    "md5OfBody": m.get("MD5OfBody") or hashlib.md5(m["Body"].encode()).hexdigest(),  # noqa: S324
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": self.region,
                }
                for m in messages
            ]
        }

    def _invoke(self, sqs: Any, messages: list[dict[str, Any]]) -> None:
        context = LambdaContext(self.function_name, self.cfg.function_timeout_seconds)
        self.stats.add(invocations=1, records=len(messages))
        try:
            result = self.handler(self._event(messages), context)
        except Exception:
            # A function error fails the whole batch: nothing is deleted, all of it comes back.
            logger.exception("worker invocation failed", extra={"batch_size": len(messages)})
            self.stats.add(errors=1, failed_records=len(messages))
            return
        failed_ids = _failed_identifiers(result, {m["MessageId"] for m in messages})
        if failed_ids is None:  # malformed response: Lambda treats the whole batch as failed
            self.stats.add(errors=1, failed_records=len(messages))
            return
        done = [m for m in messages if m["MessageId"] not in failed_ids]
        self.stats.add(failed_records=len(messages) - len(done), completed_records=len(done))
        # The mapping deletes what the invocation returned as done; the function's slot is free once it
        # has returned, so this poller goes on to its next batch while the deletes (independent calls of
        # ten, sent together) are in flight. The messages stay invisible meanwhile (their visibility
        # timeout is the function's timeout or more), and stop() waits for every delete.
        for start in range(0, len(done), DELETE_BATCH):
            self._deletes.submit(self._delete, sqs, done[start : start + DELETE_BATCH])

    def _delete(self, sqs: Any, messages: list[dict[str, Any]]) -> None:
        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        try:
            response = sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries)
        except Exception:
            logger.exception("delete of processed messages failed; they will be redelivered",
                             extra={"messages": len(messages)})  # fmt: skip
            return
        if response.get("Failed"):
            # Not a loss: the message comes back after its visibility timeout and is stored again
            # under the same key. Said aloud because it costs a redelivery.
            logger.warning("delete of processed messages failed; they will be redelivered",
                           extra={"failed": [f.get("Code") for f in response["Failed"]]})  # fmt: skip


def _failed_identifiers(result: Any, known: set[str]) -> set[str] | None:
    if result is None:
        return set()
    if not isinstance(result, dict):
        return None
    failures = result.get("batchItemFailures", [])
    ids: set[str] = set()
    for failure in failures or []:
        ident = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not ident or ident not in known:
            return None
        ids.add(ident)
    return ids


class KinesisEventSource(_Pollers):
    """Polls every shard of a stream for one consumer, like Lambda's Kinesis event source mapping."""

    def __init__(self, stream_name: str, stream_arn: str, handler: Handler, cfg: StreamConsumerWiring,
                 failure_queue_url: str, poll_interval: float = 0.25) -> None:  # fmt: skip
        self.stream_name, self.stream_arn, self.handler, self.cfg = stream_name, stream_arn, handler, cfg
        self.failure_queue_url = failure_queue_url
        self.poll_interval = poll_interval
        super().__init__()
        self.region = stream_arn.split(":")[3] if stream_arn.count(":") >= 3 else "us-east-1"

    def start(self) -> None:
        kinesis = aws.client("kinesis")
        for shard in kinesis.list_shards(StreamName=self.stream_name)["Shards"]:
            self._spawn(self._run, f"kinesis-{self.cfg.name}-{shard['ShardId']}", shard["ShardId"])

    def _run(self, shard_id: str) -> None:
        kinesis = aws.client("kinesis")
        iterator: str | None = None
        buffer: list[dict[str, Any]] = []
        window_ends = 0.0
        while not self._stop.is_set():
            try:
                if iterator is None:
                    iterator = kinesis.get_shard_iterator(
                        StreamName=self.stream_name,
                        ShardId=shard_id,
                        ShardIteratorType=self.cfg.starting_position,
                    )["ShardIterator"]
                page = kinesis.get_records(ShardIterator=iterator, Limit=self.cfg.batch_size - len(buffer))
                iterator = page.get("NextShardIterator")
                if page["Records"] and not buffer:
                    window_ends = time.monotonic() + self.cfg.maximum_batching_window_seconds
                buffer.extend(page["Records"])
                # The batching window: gather until the batch is full or the window since the first record ends.
                if buffer and (len(buffer) >= self.cfg.batch_size or time.monotonic() >= window_ends):
                    self._process(shard_id, buffer, attempt=0)
                    buffer = []  # only now: if delivery itself broke, the batch is tried again
                elif not page["Records"]:
                    self._stop.wait(self.poll_interval)
            except Exception:
                logger.exception("kinesis event source iteration failed", extra={"shard_id": shard_id})
                self._stop.wait(1.0)

    def _event(self, shard_id: str, records: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "Records": [
                {
                    "kinesis": {
                        "kinesisSchemaVersion": "1.0",
                        "partitionKey": r["PartitionKey"],
                        "sequenceNumber": r["SequenceNumber"],
                        "data": base64.b64encode(r["Data"]).decode(),
                        "approximateArrivalTimestamp": r["ApproximateArrivalTimestamp"].timestamp(),
                    },
                    "eventSource": "aws:kinesis",
                    "eventVersion": "1.0",
                    "eventID": f"{shard_id}:{r['SequenceNumber']}",
                    "eventName": "aws:kinesis:record",
                    "invokeIdentityArn": f"arn:aws:iam::000000000000:role/{self.cfg.name}",
                    "awsRegion": self.region,
                    "eventSourceARN": self.stream_arn,
                }
                for r in records
            ]
        }

    def _process(self, shard_id: str, records: list[dict[str, Any]], attempt: int) -> None:
        """Deliver ``records`` until they succeed, bisecting and retrying as the mapping is configured."""
        while records and not self._stop.is_set():
            context = LambdaContext(self.cfg.name, self.cfg.function_timeout_seconds)
            self.stats.add(invocations=1, records=len(records))
            try:
                result = self.handler(self._event(shard_id, records), context)
            except Exception:
                logger.exception("stream consumer invocation failed", extra={"consumer": self.cfg.name})
                self.stats.add(errors=1, failed_records=len(records))
                if self.cfg.bisect_batch_on_function_error and len(records) > 1:
                    half = len(records) // 2
                    self._process(shard_id, records[:half], attempt + 1)
                    self._process(shard_id, records[half:], attempt + 1)
                    return
                failed_from: int | None = 0
            else:
                failed_from = _checkpoint_index(result, records)
            if failed_from is None:
                return
            retry = records[failed_from:]
            self.stats.add(failed_records=len(retry))
            attempt += 1
            oldest = retry[0]["ApproximateArrivalTimestamp"].timestamp()
            too_old = 0 <= self.cfg.maximum_record_age_in_seconds < time.time() - oldest
            if attempt > self.cfg.maximum_retry_attempts or too_old:
                self._send_to_failure_destination(shard_id, retry, attempt, too_old)
                return
            self._stop.wait(min(5.0, 0.1 * 2**attempt))
            records = retry

    def _send_to_failure_destination(self, shard_id: str, records: list[dict[str, Any]], attempts: int,
                                     too_old: bool) -> None:  # fmt: skip
        # The shape Lambda sends to an on-failure destination: a pointer to the records, not the data.
        message = {
            "requestContext": {
                "requestId": str(uuid.uuid4()),
                "functionArn": f"arn:aws:lambda:{self.region}:000000000000:function:{self.cfg.name}",
                "condition": "RecordAgeExceeded" if too_old else "RetryAttemptsExhausted",
                "approximateInvokeCount": attempts,
            },
            "KinesisBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": records[0]["SequenceNumber"],
                "endSequenceNumber": records[-1]["SequenceNumber"],
                "batchSize": len(records),
                "streamArn": self.stream_arn,
            },
        }
        aws.client("sqs").send_message(
            QueueUrl=self.failure_queue_url, MessageBody=orjson.dumps(message).decode()
        )
        self.stats.add(sent_to_failure_destination=len(records))
        logger.warning("stream batch sent to the on-failure destination", extra=message["KinesisBatchInfo"])


def _checkpoint_index(result: Any, records: list[dict[str, Any]]) -> int | None:
    """Index of the first record to redeliver (the lowest failed sequence number), or None when all succeeded."""
    if result is None:
        return None
    if not isinstance(result, dict):
        return 0
    failures = result.get("batchItemFailures") or []
    if not failures:
        return None
    positions = {r["SequenceNumber"]: i for i, r in enumerate(records)}
    indexes = []
    for failure in failures:
        ident = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if ident not in positions:
            return 0  # an identifier Lambda cannot place: retry the whole batch
        indexes.append(positions[ident])
    return min(indexes)


def lambda_message_attributes(attributes: dict[str, Any]) -> dict[str, Any]:
    """SQS message attributes as ReceiveMessage gives them (``StringValue``) in the shape Lambda's SQS
    event carries them (``stringValue``, ``dataType``)."""
    return {
        name: {
            "stringValue": a.get("StringValue"),
            "binaryValue": base64.b64encode(a["BinaryValue"]).decode() if "BinaryValue" in a else None,
            "stringListValues": [],
            "binaryListValues": [],
            "dataType": a.get("DataType", "String"),
        }
        for name, a in attributes.items()
    }
