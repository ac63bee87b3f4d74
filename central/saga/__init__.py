"""The durable saga runner (ARCHITECTURE §6): the saga's input fixed at start, every step's output
in its own row before the next step runs (recorded only while the runner holds the saga's lease);
compensation in reverse order; recovery after a crash replays the recorded outputs."""

from central.saga.runner import (
    Abort,
    Pause,
    Refused,
    SagaBusy,
    SagaContext,
    SagaDefinition,
    SagaRecord,
    SagaRunner,
    Step,
)

__all__ = [
    "Abort",
    "Pause",
    "Refused",
    "SagaBusy",
    "SagaContext",
    "SagaDefinition",
    "SagaRecord",
    "SagaRunner",
    "Step",
]
