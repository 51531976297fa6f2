"""Accounts: password hashing, roles and permission checks, signed session cookies."""
