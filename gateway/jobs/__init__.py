"""Durable conversion jobs: the table and its claims (queue), what they run (worker), the API."""
