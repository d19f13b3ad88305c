"""InfluxDB: the schema, line protocol, the sink that makes lines, the clients (v1,
v2), the writer, and a private server for tests and the demo."""
