"""The stand-in host's request log: one JSON object per line, appended and flushed.

Owns: the log file and the stable field set (see README.md, "Request log"). Every request
the host receives is written, rejected ones included, so a test can prove what did and
did not reach the host. Must not: ever receive a password, token or Authorization header.
"""

import datetime
import json
import threading

FIELDS = (
    "ts", "conn", "method", "path", "auth_scheme", "user", "status", "action", "resource_uri",
    "shell_id", "command_id", "command_line", "stdin", "psrp", "signal", "command_done", "encrypted", "fault",
    "error", "compression", "delegated_user", "enumerated", "host_compressed",
)


def new_entry(conn, method, path):
    entry = {f: None for f in FIELDS}
    entry["ts"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")
    entry["conn"] = conn
    entry["method"] = method
    entry["path"] = path
    entry["psrp"] = []
    entry["encrypted"] = False
    return entry


class RequestLog:
    def __init__(self, path):
        self._lock = threading.Lock()
        self._fh = open(path, "a", encoding="utf-8") if path else None

    def write(self, entry):
        line = json.dumps({f: entry.get(f) for f in FIELDS}, default=str, ensure_ascii=False)
        with self._lock:
            if self._fh is None:  # no --log, or closed at shutdown while a request was in flight
                return
            self._fh.write(line + "\n")
            self._fh.flush()

    def close(self):
        if self._fh is not None:
            with self._lock:
                self._fh.close()
                self._fh = None
