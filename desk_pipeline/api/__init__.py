"""The HTTP API of `desk serve`: the CLI's documents to read, the seed's two commands to run.

Reads are open (like the CLI's, to whoever reaches the server; bind it accordingly); the two
commands need ``Authorization: Bearer <DESK_API_TOKEN>`` and are refused (503) while the server
has no token. Every error is an RFC 9457 problem (``application/problem+json``) whose ``detail``
is the CLI's message.

``app`` assembles the application from the routers of ``service``, ``books``, ``quarantine``,
``commands`` and ``runs``; ``problems`` renders errors and ``dependencies`` gives the routes
their settings, warehouse, run queue and bearer-token check.
"""

from desk_pipeline.api.app import create_app

__all__ = ["create_app"]
