"""Relay runs in tests: the run outbox_relay_sensor requests, executed in process; its report."""

from collections.abc import Mapping
from typing import Any

import dagster as dg

from desk_pipeline.defs import automation


def run_relay(
    instance: dg.DagsterInstance, resources: Mapping[str, Any]
) -> tuple[dg.ExecuteInProcessResult, dict[str, Any]]:
    """Execute outbox_relay_job on ``instance``; the result and the relay op's metadata values.

    The metadata (``published``, ``failed``, ``backlog``, ``parked``, ``parked_total`` and the
    line ``summary``) is on the step's output when the run succeeded and on its failure when a
    batch was not confirmed.
    """
    result = automation.outbox_relay_job.execute_in_process(
        instance=instance, resources=dict(resources), raise_on_error=False
    )
    for event in result.all_events:
        if event.is_successful_output:
            metadata = event.step_output_data.metadata
            return result, {key: value.value for key, value in metadata.items()}
        if event.is_step_failure:
            failure = event.step_failure_data.user_failure_data
            assert failure is not None, event.step_failure_data.error
            return result, {key: value.value for key, value in failure.metadata.items()}
    raise AssertionError(f"relay run {result.run_id} reported nothing")
