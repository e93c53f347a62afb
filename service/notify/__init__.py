"""Notifications: rules, templates, channels (WeChat, SMS), the live feed and the events outbox."""
