"""riffle's public gateway: users, uploads, downloads."""
