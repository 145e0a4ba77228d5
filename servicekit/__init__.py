"""What every riffle HTTP service does per request: log lines, request ids, the access line and
the HTTP metrics. Both images copy this package beside their own, so both services read alike."""

# The project's one version (pyproject.toml's [project] version must say the same: a test checks).
__version__ = "0.1.0"
