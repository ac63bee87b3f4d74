"""The durable saga runner (ARCHITECTURE §6): every saga and step outcome in the orchestrator's
database before the next step runs; compensation in reverse order; recovery after a crash; one
runner per saga at a time through a lease."""

from central.saga.runner import (
    Abort,
    Pause,
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
    "SagaBusy",
    "SagaContext",
    "SagaDefinition",
    "SagaRecord",
    "SagaRunner",
    "Step",
]
