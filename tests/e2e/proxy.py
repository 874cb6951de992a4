"""A TCP proxy of the tests' own, in front of a database server, that can cut it off.

Workers connect to the proxy's port; :meth:`TcpProxy.cut` drops every connection and
refuses new ones (the database is unreachable for them) until :meth:`TcpProxy.restore`.
The shared server itself never stops. Threads, one pair per connection; it listens on
127.0.0.1 only, and stops with :meth:`TcpProxy.close`.

A socket is closed only by the last thread that uses it, never by another one: a file
descriptor closed under a thread blocked on it is reused by the next socket the test
process opens (a broker connection, say), and that thread's next call would shut the new
one down. Dropping a connection only shuts its sockets down, which wakes their threads.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class _Connection:
    """A client's socket and the server's, piped both ways by two threads."""

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.sockets = (client, server)
        self.lock = threading.Lock()
        self.running = 2
        self.closed = False

    def drop(self) -> None:
        """Shut both sockets down: their threads see the end and finish."""
        with self.lock:
            if not self.closed:
                for sock in self.sockets:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)

    def finished(self) -> None:
        """One pipe thread ends: the other is woken; the last one closes both sockets."""
        with self.lock:
            self.running -= 1
            for sock in self.sockets:
                if self.running:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)
                else:
                    sock.close()
            self.closed = not self.running


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
        self.connections: set[_Connection] = set()
        self.acceptor = threading.Thread(target=self._accept, name="tcp-proxy", daemon=True)
        self.acceptor.start()

    def cut(self) -> None:
        """Drop every connection and refuse new ones."""
        self.open.clear()
        self._drop_all()

    def restore(self) -> None:
        """Forward again."""
        self.open.set()

    def close(self) -> None:
        """Stop accepting (the accepting thread closes its listener) and drop everything."""
        self.closed = True
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
            pass  # wakes the accepting thread
        self.acceptor.join(timeout=10)
        self._drop_all()

    def _drop_all(self) -> None:
        with self.lock:
            dropped, self.connections = self.connections, set()
        for connection in dropped:
            connection.drop()

    def _accept(self) -> None:
        with self.listener:
            while True:
                try:
                    client, _ = self.listener.accept()
                except OSError:
                    return
                if self.closed or not self.open.is_set():
                    client.close()  # refused while cut off; the wake-up call of close()
                    if self.closed:
                        return
                    continue
                try:
                    server = socket.create_connection(("127.0.0.1", self.target), timeout=10)
                except OSError:
                    client.close()
                    continue
                server.settimeout(None)
                connection = _Connection(client, server)
                with self.lock:
                    self.connections.add(connection)
                for source, sink in ((client, server), (server, client)):
                    threading.Thread(
                        target=self._pipe, args=(connection, source, sink), daemon=True
                    ).start()

    def _pipe(self, connection: _Connection, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            connection.finished()
