"""The collections the notify area owns."""
