"""Events on the bus: CloudEvents envelope, payloads, subjects and stream definitions (no I/O)."""
