"""Test session wiring: each real dependency lives in its own fixture module."""

pytest_plugins = [
    "tests.fixtures.transcoder",
    "tests.fixtures.database",
    "tests.fixtures.storage",
    "tests.fixtures.gateway",
]
