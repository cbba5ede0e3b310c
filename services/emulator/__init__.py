"""services/emulator: reads random rows (pin, geo, user) of a source database and posts them
to the ingest API, like the original project's user_posting_emulation."""
