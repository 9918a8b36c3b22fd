"""Dagster wiring; importing it silences Dagster's beta, preview and supersession notices.

Dagster warns, each time the code location loads (webserver, daemon, code server, `desk`), that
the desk uses beta parameters (`backfill_policy`, sensor `owners`, ...). These notices are for the
desk's developers, who read them in Dagster's release notes when they move the pin; an operator
can act on none of them. Only those three categories are ignored: any other warning, a
DeprecationWarning included, still shows. The filters are set here, before any module of this
package applies a decorator that warns.
"""

import warnings

import dagster as dg

for _notice in (dg.BetaWarning, dg.PreviewWarning, dg.SupersessionWarning):
    warnings.filterwarnings("ignore", category=_notice)
