"""Benchmarks: each module measures one part against its floor in the same run (`python -m bench`)."""
