"""Huimin's domain: what residents, station staff, supervisors and integrators can do."""
