"""The one exception type users of mummy meet."""


class MummyError(Exception):
    """Raised for every error a user of mummy can cause: bad configuration,
    a bad response from a handler (responding twice, an invalid header), or a
    server that cannot start. The message says what to do about it."""
