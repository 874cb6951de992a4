"""A TCP proxy of the tests' own, in front of a database server, that can cut it off.

Workers connect to the proxy's port; :meth:`TcpProxy.cut` drops every connection and
refuses new ones (the database is unreachable for them) until :meth:`TcpProxy.restore`.
The shared server itself never stops. Threads, one pair per connection; it listens on
127.0.0.1 only, and stops with :meth:`TcpProxy.close`.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to 127.0.0.1:``target``, until cut off."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.open = threading.Event()
        self.open.set()
        self.closed = False
        self.lock = threading.Lock()
        self.sockets: set[socket.socket] = set()
        threading.Thread(target=self._accept, name="tcp-proxy", daemon=True).start()

    def cut(self) -> None:
        """Drop every connection and refuse new ones."""
        self.open.clear()
        self._drop_all()

    def restore(self) -> None:
        """Forward again."""
        self.open.set()

    def close(self) -> None:
        """Stop listening and drop every connection."""
        self.closed = True
        self.listener.close()
        self._drop_all()

    def _drop_all(self) -> None:
        with self.lock:
            dropped, self.sockets = self.sockets, set()
        for sock in dropped:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            if not self.open.is_set():
                client.close()  # refused while cut off
                continue
            try:
                server = socket.create_connection(("127.0.0.1", self.target), timeout=10)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            with self.lock:
                self.sockets |= {client, server}
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
