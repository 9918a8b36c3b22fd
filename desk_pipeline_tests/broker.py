"""RabbitMQ test helpers: a throw-away vhost per test, draining queues, a TCP proxy to cut."""

import contextlib
import os
import shutil
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from urllib.parse import quote

import pika
import pika.exceptions

from desk_pipeline.adapters.publisher import EXCHANGE, routing_key
from desk_pipeline_tests.conftest import service_missing

AMQP_HOST = os.environ.get("DESK_TEST_AMQP_HOST", "127.0.0.1")
AMQP_PORT = int(os.environ.get("DESK_TEST_AMQP_PORT", "5672"))
RABBITMQCTL = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"


def amqp_url(vhost: str, port: int = AMQP_PORT) -> str:
    return f"amqp://guest:guest@{AMQP_HOST}:{port}/{quote(vhost, safe='')}"


def _ctl(*args: str) -> None:
    subprocess.run([RABBITMQCTL, "-q", *args], check=True, capture_output=True, timeout=60)


@contextlib.contextmanager
def temporary_vhost() -> Iterator[str]:
    """A vhost ``desk_test_<8 hex>`` that guest may use, deleted afterwards."""
    try:
        probe = pika.BlockingConnection(pika.URLParameters(amqp_url("/")))
        probe.close()
    except (pika.exceptions.AMQPError, OSError) as err:
        service_missing("RabbitMQ", err)
    vhost = f"desk_test_{uuid.uuid4().hex[:8]}"
    _ctl("add_vhost", vhost)
    try:
        _ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
        yield vhost
    finally:
        _ctl("delete_vhost", vhost)


def channel_on(
    url: str,
) -> tuple[pika.BlockingConnection, pika.adapters.blocking_connection.BlockingChannel]:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    return connection, connection.channel()


def publish_raw(channel, book: str, body: str | bytes, message_id: str | None) -> None:
    """``body`` to the event exchange under ``book``'s routing key, as the relay sends events."""
    channel.basic_publish(
        EXCHANGE,
        routing_key(book),
        body,
        pika.BasicProperties(message_id=message_id, delivery_mode=pika.DeliveryMode.Persistent),
    )


def drain(url: str, queue: str, *, expect: int, deadline_s: float = 30.0) -> list[tuple]:
    """Get (and ack) messages until ``expect`` arrived or the deadline passed; then any extras."""
    connection, channel = channel_on(url)
    got: list[tuple] = []
    deadline = time.monotonic() + deadline_s
    try:
        while time.monotonic() < deadline:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                if len(got) >= expect:
                    break
                connection.sleep(0.05)
                continue
            got.append((method, properties, body))
    finally:
        connection.close()
    return got


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TcpProxy:
    """Forwards 127.0.0.1:<port> to the broker; ``start``/``stop`` make the broker come and go."""

    def __init__(self, port: int, target: tuple[str, int] = (AMQP_HOST, AMQP_PORT)) -> None:
        self.port = port
        self.target = target
        self._server: socket.socket | None = None
        self._sockets: list[socket.socket] = []

    def start(self) -> None:
        server = socket.socket()
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(16)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            # Wakes the thread blocked in accept(), which would keep the port bound: a start()
            # after a stop() then failed with "Address already in use".
            with contextlib.suppress(OSError):
                self._server.shutdown(socket.SHUT_RDWR)
            self._server.close()
            self._server = None
        for s in self._sockets:
            with contextlib.suppress(OSError):
                s.close()
        self._sockets.clear()

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            with contextlib.suppress(OSError):
                sink.shutdown(socket.SHUT_WR)
