"""Real WSGI applications served by mummy in tests/integration/test_wsgi.py."""
