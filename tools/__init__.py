"""Programs the router never imports: the launcher, the backend simulator, the health check, the sessions CLI."""
