"""outbox rows the relay parked: events a transport can never carry, with the reason

One event the broker refused whatever the attempt (a routing key over AMQP's 255 bytes) stopped
every relay pass at that event, and with it every later event of every book. The relay now
parks such an event with its reason; the book's later events wait behind it, other books flow.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 17:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parked_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("parked_at_us", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_column("parked_at_us")
        batch_op.drop_column("parked_reason")
