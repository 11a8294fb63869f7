"""Real parts for the fault tests: app servers in child processes, a TCP proxy that can cut the database
off, and side connections that hold row locks and watch the server's backends. Celery workers, the
database's URL and a child's environment come from tests/celery_worker.py."""

from __future__ import annotations

import base64
import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from contextlib import suppress
from pathlib import Path

import psycopg
from django.db import connection

from tests.celery_worker import ROOT, child_env, stop_process


def wait_for(predicate, *, timeout: float, what: str, interval: float = 0.05):
    """Poll until `predicate()` is truthy and return its value; fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def side_connection() -> psycopg.Connection:
    """A connection of the test's own (not Django's) to the test database, e.g. to hold a row lock."""
    db = connection.settings_dict
    return psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"], password=db["PASSWORD"] or None
    )


def lock_waiter(query_prefix: str) -> int | None:
    """The pid of a backend of the test database waiting on a lock in a statement starting with
    `query_prefix`, if there is one."""
    with side_connection() as conn:
        row = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND wait_event_type = 'Lock' AND starts_with(query, %s) ORDER BY backend_start LIMIT 1",
            [query_prefix],
        ).fetchone()
    return row[0] if row else None


def backend_has_written(pid: int) -> bool:
    """Whether the backend's open transaction has written something (it was given a transaction id)."""
    with side_connection() as conn:
        row = conn.execute(
            "SELECT backend_xid IS NOT NULL FROM pg_stat_activity WHERE pid = %s", [pid]
        ).fetchone()
    return bool(row and row[0])


# --- An app server in a child process ---------------------------------------------------------------


class AppServer:
    """gunicorn with one sync worker, so every request goes through one process and its one
    persistent database connection (as each worker of a production server does)."""

    def __init__(self, log: Path, **env: str):
        self.log = log
        listener = socket.create_server(("127.0.0.1", 0))
        self.port = listener.getsockname()[1]
        with log.open("w") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", "promotions_site.wsgi", "--bind", f"fd://{listener.fileno()}",
                 "--workers", "1", "--timeout", "60", "--graceful-timeout", "5", "--no-control-socket"],
                cwd=ROOT, env=child_env(**env), stdout=out, stderr=subprocess.STDOUT, pass_fds=[listener.fileno()],
            )  # fmt: skip
        listener.close()
        # An unknown API URL answers 404 without touching the database: the server is up.
        wait_for(lambda: self._answers(), timeout=30, what="gunicorn to serve")

    def _answers(self) -> bool:
        assert self.process.poll() is None, "gunicorn exited"
        try:
            return self.request("GET", "/api_gateway/v1/not-a-route", timeout=10)[0] == 404
        except OSError:
            return False

    def worker_pids(self) -> set[int]:
        return children(self.process.pid)

    def request(self, method: str, path: str, body=None, *, auth: tuple[str, str] | None = None, timeout=30):
        """(status, headers, parsed JSON body or the raw text)."""
        headers = {"Content-Type": "application/json"}
        if auth:
            headers["Authorization"] = "Basic " + base64.b64encode(":".join(auth).encode()).decode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request(method, path, None if body is None else json.dumps(body), headers)
            response = conn.getresponse()
            raw = response.read().decode()
            try:
                data = json.loads(raw)
            except ValueError:
                data = raw
            return response.status, {k.lower(): v for k, v in response.getheaders()}, data
        finally:
            conn.close()

    def stop(self) -> None:
        stop_process(self.process, self.log)


def children(pid: int) -> set[int]:
    """The pids of a process's children (read from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The command name (in parentheses) may hold spaces: the fields after it are fixed.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


# --- A TCP proxy in front of the database ------------------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:<port> to the database, and can cut it off as an outage does.

    `cut()`: every open connection is dropped and new ones are accepted but never answered (a
    network partition: the client waits for the server until its connect timeout). `restore()`:
    forward again. `drop_connections()`: drop the open connections only (a database restart or a
    failover: new connections work at once).
    """

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.forwarding = True
        self.lock = threading.Lock()
        self.open: list[socket.socket] = []  # every socket of every connection, forwarded or held
        self.accepted = 0
        threading.Thread(target=self._accept, name="proxy-accept", daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            with self.lock:
                self.accepted += 1
                self.open.append(client)
                if not self.forwarding:
                    continue  # held, unanswered, until restore() or close()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                self._close([client])
                continue
            upstream.settimeout(None)
            with self.lock:
                self.open.append(upstream)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        self._close([source, sink])

    def _close(self, sockets) -> None:
        for sock in sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
            with self.lock:
                if sock in self.open:
                    self.open.remove(sock)

    def drop_connections(self) -> None:
        with self.lock:
            sockets = list(self.open)
        self._close(sockets)

    def cut(self) -> None:
        with self.lock:
            self.forwarding = False
        self.drop_connections()

    def restore(self) -> None:
        # Connections held during the cut are dropped: their clients gave up long ago.
        self.drop_connections()
        with self.lock:
            self.forwarding = True

    def close(self) -> None:
        with suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        self.listener.close()
        self.drop_connections()
