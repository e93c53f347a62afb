"""HTTP layer: aiohttp route tables, middlewares and request helpers."""
