"""The collections the cases area owns."""
