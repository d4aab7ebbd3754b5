"""Loopback HTTP servers that speak each provider's real wire format, for tests."""
