"""Audit: the append-only log of staff reads of personal data; owns `audit_log`."""
