"""mummy without the optional h2 package: a fresh interpreter (a subprocess) in which
h2 cannot be imported serves HTTP/1.1 and answers an HTTP/2 preface with 400."""

import subprocess
import sys


def test_without_the_h2_package_everything_else_works() -> None:
    code = """
import importlib.abc, sys, socket
class Hide(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "h2" or name.startswith("h2."):
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, Hide())
import mummy
s = mummy.Server(lambda r: r.respond(200, None, "fine"), workers=1)
assert s.http2 is False
s.start(0, "127.0.0.1")
with socket.create_connection(("127.0.0.1", s.port)) as c:
    c.sendall(b"GET / HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
    assert c.recv(4096).endswith(b"fine")
with socket.create_connection(("127.0.0.1", s.port)) as c:
    c.sendall(b"PRI * HTTP/2.0\\r\\n\\r\\nSM\\r\\n\\r\\n")
    assert c.recv(4096).startswith(b"HTTP/1.1 400 ")
s.close()
assert "h2" not in sys.modules
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "ok", out.stderr
