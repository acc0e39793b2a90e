"""Readers: text out of each kind of file, as sections that remember where they are."""
