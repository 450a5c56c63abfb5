"""Measures of dreamed outputs against their sources."""
