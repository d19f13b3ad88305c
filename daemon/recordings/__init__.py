"""Raw recordings (MCAP): the format, the writer (a sink), the reader, and QA manifests."""
