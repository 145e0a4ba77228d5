"""What every riffle HTTP service does per request: log lines, request ids, the access line and
the HTTP metrics. Both images copy this package beside their own, so both services read alike."""
