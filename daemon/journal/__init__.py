"""A device's input, kept before it is used: the journal a killed run is recovered from."""
