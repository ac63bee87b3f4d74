"""The events service: venues, events (each in one hall, with a doors window) and gates."""
