"""The Open311 GeoReport v2 facade over cases and the catalogue."""
