"""The orchestrator: the only public entry. It owns no business data but the saga log."""
