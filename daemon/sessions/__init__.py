"""Sessions: the state every sink reads, the book of starts and stops, and control over MQTT."""
