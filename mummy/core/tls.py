"""TLS for one connection: an `ssl.SSLObject` over two memory BIOs (sans-IO).

The handshake (the expensive part: a signature per connection) runs on a
worker, one step per batch of received bytes, so a storm of handshakes does not
stall the IO thread. Once established, the IO thread decrypts what arrives and
encrypts what leaves (symmetric crypto in OpenSSL, cheap next to the Python
work per request). Only one thread touches a TLSState at a time: the worker
during a handshake step (the connection is busy), the IO thread afterwards.
"""

import ssl


class TLSState:
    __slots__ = ("_in", "_obj", "_out", "closed_by_peer", "ready")

    def __init__(self, context: ssl.SSLContext) -> None:
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._obj = context.wrap_bio(self._in, self._out, server_side=True)
        self.ready = False
        self.closed_by_peer = False

    def handshake(self, data: bytes) -> tuple[bytes, bool]:
        """Worker: feed handshake bytes; returns (bytes to send, finished).
        Raises ssl.SSLError when the handshake fails."""
        self._in.write(data)
        try:
            self._obj.do_handshake()
            finished = True
        except ssl.SSLWantReadError:
            finished = False
        return self._out.read(), finished

    @property
    def alpn_protocol(self) -> str | None:
        return self._obj.selected_alpn_protocol()

    def decrypt(self, data: bytes) -> bytes:
        """IO thread: ciphertext in, whatever plaintext it completes out.
        Raises ssl.SSLError on a bad record."""
        if data:
            self._in.write(data)
        chunks = []
        while True:
            try:
                chunk = self._obj.read(65536)
            except ssl.SSLWantReadError:
                break
            except ssl.SSLZeroReturnError:
                self.closed_by_peer = True  # close_notify
                break
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks)

    def encrypt(self, data: bytes) -> bytes:
        """IO thread: plaintext in, records to send out."""
        self._obj.write(data)
        return self._out.read()


def server_context(
    certfile: str, keyfile: str | None = None, alpn: list[str] | None = None
) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certfile, keyfile)
    if alpn:
        context.set_alpn_protocols(alpn)
    return context
