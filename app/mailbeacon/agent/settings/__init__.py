"""Settings and secrets of one profile: the dotted keys, their value kinds, the keyring."""
