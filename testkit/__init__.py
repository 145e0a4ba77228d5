"""What the tests and the benchmark share: live servers, the services in process, WAV files,
throwaway databases, an S3 view, a TCP relay, /proc, API calls and problem assertions.

Plain helpers, no pytest fixtures (those live in ``tests/fixtures``); nothing here imports
``tests``.
"""
