"""MailBeacon: email open and click tracking for the desktop."""

__version__ = "0.3.1"
