"""Flask console and JSON API for AED managers, municipalities and dispatchers."""
