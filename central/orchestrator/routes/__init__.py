"""Public routes, one module per area of api-contract.md."""
