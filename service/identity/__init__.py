"""Accounts, sign-in, tokens, OTP, passwords, staff, API clients and rate limits; owns their collections."""
