"""The daemon: wiring and a TaskGroup, the health reporter, manifests of a run, the run marker."""
