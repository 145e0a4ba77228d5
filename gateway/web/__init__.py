"""The page for people at ``/`` (static files, no build step) and the self-hosted API docs."""
