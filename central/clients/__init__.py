"""How the orchestrator reaches the atomic services: one typed client per service (users.py,
orders.py, events.py over REST; inventory.py over gRPC), one method per operation with typed
results (models.py), each service's errors mapped once, in its client. One shared aiohttp session
per REST service, one grpc.aio channel for inventory, a deadline and the correlation id on every
call."""
