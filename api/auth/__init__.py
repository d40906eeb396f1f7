"""api.auth: accounts, roles, API keys, sessions and the credential check every protected route runs."""
