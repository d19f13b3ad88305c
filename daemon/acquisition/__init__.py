"""One device's acquisition: its port, supervised; driver records stamped onto host
time; its state and counters; the inflation detector."""
