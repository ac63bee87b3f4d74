"""How the orchestrator reaches the atomic services: one shared aiohttp session per REST service,
one grpc.aio channel for inventory, a deadline on every call, the correlation id on every call."""
