"""Puzzles: the typed edit a puzzle proposes, its framing and its pictures."""
