"""Hostile-input fuzzing of every parser that takes outside input (property-based, hypothesis)."""
