"""Evaluation: contingency tables, adapted Rand error, VI, edge accuracy and quality over time."""
