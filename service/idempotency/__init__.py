"""Idempotency-Key for creating POSTs; owns `idempotency_keys`."""
