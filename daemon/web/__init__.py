"""The live page: each device's picture (a sink), the feed of server-sent events, the
routes (session control, a finished session's downloads), and the page's static files."""
