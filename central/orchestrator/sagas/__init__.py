"""The orchestrator's sagas, each a SagaDefinition for the durable runner."""
