"""The collections the visits area owns."""
