"""The collections the identity area owns."""
