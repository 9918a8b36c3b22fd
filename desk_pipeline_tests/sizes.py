"""How many examples a property test draws: sized for CI, ten times more when asked.

``HYPOTHESIS_PROFILE=thorough make test-unit`` runs every property test with ten times its CI
example count (a long local run before a release); CI keeps the unit suite under a minute.
"""

import os

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"


def examples(ci: int) -> int:
    """``ci`` examples in CI, ten times as many in the thorough profile."""
    return ci * 10 if THOROUGH else ci
