"""Relay throughput with publisher confirms: outbox -> RabbitMQ, events per second.

Writes ``--books`` x ``--days`` end-of-day snapshots (one outbox event each) into a fresh
warehouse, binds a uniquely named queue for those books on the broker, then times
``relay_once`` (read pending rows, publish each persistent message and wait for its confirm,
mark the batch published) and, separately, the bare publisher on the same events.

    .venv/bin/python -m benchmarks.relay_bench --books 50 --days 40
    .venv/bin/python -m benchmarks.relay_bench --warehouse postgresql+psycopg://...

The queue is deleted afterwards; the SQLite warehouse lives in a temporary folder.
"""

import argparse
import json
import tempfile
import time
import uuid

import pandas as pd
import pika

from desk_pipeline.adapters.consumer import declare_queue
from desk_pipeline.adapters.publisher import OutgoingEvent, RabbitMQPublisher, routing_key
from desk_pipeline.adapters.relay import relay_once
from desk_pipeline.adapters.warehouse import PositionRepository, now_micros


def store_eods(repo: PositionRepository, books: list[str], days: int) -> int:
    start = pd.Timestamp("2026-01-05", tz="UTC")
    written = 0
    for i in range(days):
        day = start + pd.Timedelta(days=i)
        frame = pd.DataFrame(
            {
                "book_id": books,
                "instrument_id": "DE0001",
                "quantity": 100.0 + i,
                "quantity_micro_units": (100 + i) * 1_000_000,
                "avg_price": 1.0,
                "realized_pnl": 0.0,
                "business_date": day.strftime("%Y-%m-%d"),
                "as_of": day + pd.Timedelta(days=1),
            }
        )
        written += len(repo.keep_last_eod(frame, now_micros()))
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--amqp", default="amqp://guest:guest@127.0.0.1:5672/%2F")
    parser.add_argument("--warehouse", default=None, help="SQLAlchemy URL (default: temp SQLite)")
    parser.add_argument("--books", type=int, default=50)
    parser.add_argument("--days", type=int, default=40)
    args = parser.parse_args()

    tag = uuid.uuid4().hex[:8]
    books = [f"BENCH-{tag}-{i:03d}" for i in range(args.books)]
    queue = f"q.bench.{tag}"
    connection = pika.BlockingConnection(pika.URLParameters(args.amqp))
    channel = connection.channel()
    for book in books:
        declare_queue(channel, queue, binding_key=routing_key(book))
    try:
        with tempfile.TemporaryDirectory() as folder:
            repo = PositionRepository(args.warehouse or f"sqlite:///{folder}/warehouse.db")
            events = store_eods(repo, books, args.days)
            pending = repo.pending_events(limit=events)

            started = time.perf_counter()
            result = relay_once(repo, RabbitMQPublisher(args.amqp))
            relay_s = time.perf_counter() - started

            # The same events again through the bare publisher: the broker's share of the time.
            outgoing = [
                OutgoingEvent(r.event_id, r.event_type, r.book_id, r.payload)
                for r in pending.itertuples()
            ]
            started = time.perf_counter()
            RabbitMQPublisher(args.amqp).publish(outgoing)
            publish_s = time.perf_counter() - started
            repo.engine.dispose()
        delivered = channel.queue_declare(queue=queue, passive=True).method.message_count
    finally:
        channel.queue_delete(queue=queue)
        channel.queue_delete(queue=f"{queue}.dlq")
        connection.close()
    print(
        json.dumps(
            {
                "warehouse": "sqlite" if args.warehouse is None else args.warehouse.split(":")[0],
                "events": events,
                "relayed": result.published,
                "delivered_to_queue": delivered,
                "relay_seconds": round(relay_s, 3),
                "relay_events_per_s": round(result.published / relay_s, 1),
                "publish_only_events_per_s": round(len(outgoing) / publish_s, 1),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
