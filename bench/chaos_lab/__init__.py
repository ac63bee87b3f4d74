"""Fault injection for chaos runs (bench/chaos.py and tests/chaos/): private PostgreSQL and
RabbitMQ, a cuttable TCP proxy, killable service processes, the mixed load and the invariants."""
