#!/usr/bin/env bash
# `make run`: migrate, then supervise the transcoder and the gateway in the foreground
# (servicekit/supervisor.py: a program that dies is restarted with back-off; Ctrl-C stops all).
# Honours PORT (gateway, 8000), TRANSCODER_PORT (8001), HOST (127.0.0.1), SHUTDOWN_GRACE_SECONDS
# (25) and every gateway setting.
set -euo pipefail
cd "$(dirname "$0")/.."

mkdir -p var
python -m alembic upgrade head
exec python -m servicekit.supervisor
