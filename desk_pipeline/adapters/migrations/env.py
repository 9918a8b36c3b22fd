"""Alembic environment: migrations run on the connection the repository hands over."""

from alembic import context

from desk_pipeline.adapters.tables import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True
)
with context.begin_transaction():
    context.run_migrations()
