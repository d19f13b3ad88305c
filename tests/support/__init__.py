"""What tests share: helpers that run pvlog as a user does, and real servers (InfluxDB,
Mosquitto, VictoriaMetrics, a fault proxy, a throwaway CA) on free loopback ports."""
