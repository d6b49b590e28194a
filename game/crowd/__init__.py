"""The crowd: assignment, votes and decisions, reliability, scoring and reports."""
