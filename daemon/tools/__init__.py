"""The CLI verbs beside ``pvlog run``: one module each, and their progress line."""
