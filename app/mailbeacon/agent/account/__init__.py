"""The rep's mail account: servers found from the address, sign-in (OAuth 2.0 or password)."""
