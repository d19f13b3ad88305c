"""Device protocols, sans-IO (bytes in, records out), and the serial port layer.

Nothing here imports the daemon or the simulators.
"""
