"""``riffle``, the command-line client: the same public API as the page (users, tus uploads,
jobs, records), for terminals and scripts."""
