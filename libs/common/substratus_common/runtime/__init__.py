"""Service runtime: the main loop, health server and consumer runner every service is built from."""
