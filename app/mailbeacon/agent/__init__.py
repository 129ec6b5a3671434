"""The desktop-side engine (asyncio, no Qt): relay, outbox, stream, records, notifications."""
