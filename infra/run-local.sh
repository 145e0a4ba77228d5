#!/usr/bin/env bash
# `make run`: migrate, then the transcoder and the gateway in the foreground; Ctrl-C stops both.
# Honours PORT (gateway, 8000), TRANSCODER_PORT (8001), HOST (127.0.0.1) and every gateway setting.
set -euo pipefail
cd "$(dirname "$0")/.."

PORT="${PORT:-8000}"
TRANSCODER_PORT="${TRANSCODER_PORT:-8001}"
HOST="${HOST:-127.0.0.1}"
export TRANSCODER_URL="${TRANSCODER_URL:-http://127.0.0.1:${TRANSCODER_PORT}}"

mkdir -p var
python -m alembic upgrade head

pids=()
stop() {
    trap - INT TERM EXIT
    kill -TERM "${pids[@]}" 2>/dev/null || true
    wait "${pids[@]}" 2>/dev/null || true
}
trap stop INT TERM EXIT

python -m uvicorn transcoder.main:create_app --factory \
    --host 127.0.0.1 --port "$TRANSCODER_PORT" --no-access-log &
pids+=($!)
python -m uvicorn gateway.main:create_app --factory --host "$HOST" --port "$PORT" --no-access-log &
pids+=($!)

echo "riffle: gateway on http://${HOST}:${PORT} (API docs at /docs), transcoder on 127.0.0.1:${TRANSCODER_PORT}"
# Whichever stops first (Ctrl-C, a crash) takes the other down with it.
wait -n "${pids[@]}"
