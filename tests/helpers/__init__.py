"""What the tests share: fakes, builders and real helper processes (one copy each)."""
