"""Pure rules and records: no I/O, no dependency on the rest of MailBeacon."""
