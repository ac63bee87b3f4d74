"""The orders service: orders and seat transfers, each a small state machine kept in SQL."""
