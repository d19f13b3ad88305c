"""The durable outbox: the SQLite store, the batcher that commits to it, and the one
way to open it."""
