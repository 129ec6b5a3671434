"""Deliverability: what tracking costs in spam-filter score (issue 21, docs/rules.md)."""
