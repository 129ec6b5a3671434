"""The tracking pixel image."""

# The 43-byte transparent 1x1 GIF89a (the same bytes as resources/pixel.gif).
GIF = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f904010000000"
    "02c00000000010001000002024401003b"
)
