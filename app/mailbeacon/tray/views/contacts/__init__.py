"""Contacts: the table, the window, and one contact's record."""
