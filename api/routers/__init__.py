"""api.routers: the HTTP routers, thin faces over the services."""
