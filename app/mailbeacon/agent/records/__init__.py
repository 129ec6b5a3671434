"""The local records store: sent emails, logged copies, events, contacts, and reports."""
