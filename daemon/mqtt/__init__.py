"""MQTT: topics, the connection, the live stream, and scale-out (edge forwarder, recorder tier)."""
