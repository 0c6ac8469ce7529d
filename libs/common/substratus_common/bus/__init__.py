"""The NATS JetStream bus: connection, streams, publishing and pull consumers."""
