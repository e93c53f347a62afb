"""Signed webhooks for integrator clients: subscriptions, signing and guaranteed delivery."""
