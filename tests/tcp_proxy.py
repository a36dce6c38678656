"""A small threaded TCP proxy that a test (or a benchmark) can cut and restore, to put a real
database "down" for the processes that reach it through the proxy.

``cut()`` closes the listening socket (new connections are refused: ECONNREFUSED) and drops every
open connection (both sides shut down); ``hang()`` drops the open connections too but accepts new
ones and never answers on them (a database host that is gone without refusing anything: the
client's own timeouts must act); ``restore()`` forwards again on the same port.
"""
from __future__ import annotations

import socket
import threading


class TcpProxy:
    def __init__(self, target_host: str, target_port: int, *, host: str = "127.0.0.1") -> None:
        self.target = (target_host, target_port)
        self.host = host
        self.port = 0
        self._lock = threading.Lock()
        self._pairs: set[tuple[socket.socket, socket.socket]] = set()
        self._listener: socket.socket | None = None
        self._accepting: threading.Thread | None = None
        self._stop = threading.Event()
        self._hanging = False
        self._held: list[socket.socket] = []
        self.accepted = 0

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> TcpProxy:
        self._listen()
        return self

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def is_cut(self) -> bool:
        return self._listener is None

    def cut(self) -> None:
        """Refuse new connections and drop the open ones."""
        self._stop_listening()
        self._drop_pairs()

    def _drop_pairs(self) -> None:
        with self._lock:
            pairs, self._pairs = list(self._pairs), set()
        for pair in pairs:
            _close_pair(pair)

    def hang(self) -> None:
        """Accept new connections but never answer; drop the open ones."""
        self._hanging = True
        self._drop_pairs()

    def restore(self) -> None:
        self._hanging = False
        with self._lock:
            held, self._held = self._held, []
        for sock in held:
            _close_pair((sock, sock))
        if self._listener is None:
            self._listen()

    def close(self) -> None:
        self.restore()
        self.cut()

    # -- internals ----------------------------------------------------------------------------

    def _listen(self) -> None:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(128)
        listener.settimeout(0.1)
        self.port = listener.getsockname()[1]
        self._stop = threading.Event()
        self._listener = listener
        self._accepting = threading.Thread(target=self._accept_loop, args=(listener, self._stop),
                                           name=f"tcp-proxy-{self.port}", daemon=True)
        self._accepting.start()

    def _stop_listening(self) -> None:
        listener, thread = self._listener, self._accepting
        if listener is None:
            return
        self._stop.set()
        if thread is not None:
            thread.join(5)
        listener.close()  # from now on a connection to the port is refused
        self._listener = self._accepting = None

    def _accept_loop(self, listener: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if stop.is_set():
                client.close()
                return
            if self._hanging:
                with self._lock:
                    self._held.append(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            pair = (client, upstream)
            with self._lock:
                self._pairs.add(pair)
                self.accepted += 1
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst, pair), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket, pair) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        with self._lock:
            self._pairs.discard(pair)
        _close_pair(pair)


def _close_pair(pair: tuple[socket.socket, socket.socket]) -> None:
    for sock in pair:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            sock.close()
        except OSError:
            pass
