"""Dagster wiring; importing it silences Dagster's beta, preview and supersession notices.

Dagster warns, each time the code location loads (webserver, daemon, code server, `desk`), that
the desk uses beta parameters (`backfill_policy`, sensor `owners`, ...). These notices are for the
desk's developers, who read them in Dagster's release notes when they move the pin; an operator
can act on none of them. Only those three notices are ignored: any other warning, a
DeprecationWarning included, still shows. The filters are set here, before any module of this
package applies a decorator that warns.
"""

import warnings

# Matched by Dagster's wording (dagster_shared.utils.warnings), not by its warning classes:
# importing Dagster here would load it into `desk positions` and the other reads, which import
# defs.settings and answer without Dagster (e2e test_cli_reads_load).
for _notice in (
    "is currently in beta",
    "is currently in preview",
    "is superseded and its usage is discouraged",
):
    warnings.filterwarnings("ignore", message=rf"(?s).*{_notice}")
