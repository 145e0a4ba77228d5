"""Webhooks: a user's endpoint, signed events, their deliveries (a job kind)."""
