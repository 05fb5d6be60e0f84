"""Drive ``wecom-material-mock``, an offline WeCom emulator, from Python tests.

``start()`` runs the emulator binary that this wheel installs and returns a :class:`WecomMock`
for its admin API; the pytest plugin (``wecom_mock`` fixture) wraps it. Standard library only.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import threading
import urllib.error
import urllib.parse
import urllib.request

__all__ = ["WecomMock", "WecomMockError", "binary", "start"]

BINARY_NAME = "wecom-material-mock"


class WecomMockError(Exception):
    """The emulator did not start, or an admin call answered an error (its message)."""


def binary():
    """The emulator binary: ``$WECOM_MOCK_BIN``, else the one this wheel installed next to
    the running Python, else the first on ``PATH``."""
    explicit = os.environ.get("WECOM_MOCK_BIN")
    if explicit:
        return explicit
    exe = BINARY_NAME + (".exe" if sys.platform == "win32" else "")
    beside = os.path.join(sysconfig.get_path("scripts"), exe)
    if os.path.exists(beside):
        return beside
    found = shutil.which(BINARY_NAME)
    if found:
        return found
    raise WecomMockError(
        BINARY_NAME + " not found: pip install the wecom-material-mock wheel, "
        "or set WECOM_MOCK_BIN to the binary (cargo install wecom-material-mock --features cli)"
    )


def start(args=(), timeout=30.0):
    """Starts the emulator (``--json`` plus ``args``, e.g. ``["--strict-ids"]``) and returns
    a :class:`WecomMock` once it listens. Call ``stop()`` (or use ``with``) when done."""
    command = [binary(), "--json", *args]
    try:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=None
        )
    except OSError as e:
        raise WecomMockError("could not run %s: %s" % (command[0], e)) from e
    line = []

    def read_first_line():
        line.append(process.stdout.readline())

    reader = threading.Thread(target=read_first_line, daemon=True)
    reader.start()
    reader.join(timeout)
    if not line or not line[0]:
        process.kill()
        process.wait()
        raise WecomMockError(
            "%s printed no JSON line within %ss (exit status %s)"
            % (" ".join(command), timeout, process.returncode)
        )
    try:
        info = json.loads(line[0])
    except ValueError as e:
        process.kill()
        process.wait()
        raise WecomMockError("not the --json line: %r" % line[0]) from e
    return WecomMock(info, process)


class WecomMock:
    """A running emulator: its base URL and credentials, and the admin API as methods.

    ``base_url``, ``corp_id`` and ``secret`` are what a client under test needs; ``apps``
    lists every app (``--app CORP_ID:SECRET``); ``pid`` is the emulator's process id.
    """

    def __init__(self, info, process=None):
        self.info = info
        self.base_url = info["base_url"]
        self.corp_id = info["corp_id"]
        self.secret = info["secret"]
        self.apps = info.get("apps", [])
        self.pid = info.get("pid")
        self._process = process

    def __repr__(self):
        # The secret is never shown.
        return "WecomMock(base_url=%r, corp_id=%r)" % (self.base_url, self.corp_id)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- the admin API ----------------------------------------------------------------

    def admin(self, method, path, json_body=None, data=None, params=None):
        """One admin call (``path`` after ``/__mock/``); the decoded JSON answer. An answer
        other than 200 raises :class:`WecomMockError` with the emulator's message."""
        url = self.base_url + "/__mock/" + path.lstrip("/")
        if params:
            url += "?" + urllib.parse.urlencode(params)
        body = data
        headers = {}
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            try:
                message = json.loads(e.read()).get("error")
            except ValueError:
                message = None
            raise WecomMockError(
                "%s /__mock/%s: HTTP %s: %s" % (method, path, e.code, message)
            ) from None

    def fault(
        self,
        endpoint,
        errcode=None,
        status=None,
        body=None,
        content_type=None,
        delay_ms=None,
        drop_after_bytes=None,
        times=1,
    ):
        """Queues a fault for the next ``times`` requests of ``endpoint`` (``"media/get"``,
        ``"media/upload"``, ``"gettoken"``, …); ``times=None`` keeps it until ``reset()``.
        One of ``errcode`` (with ``content_type`` for the answer's Content-Type, ``""`` for
        none), ``status`` (with ``body``), ``delay_ms`` or ``drop_after_bytes``."""
        fault = {"endpoint": endpoint}
        for key, value in (
            ("errcode", errcode),
            ("status", status),
            ("body", body),
            ("content_type", content_type),
            ("delay_ms", delay_ms),
            ("drop_after_bytes", drop_after_bytes),
            ("times", times),
        ):
            if value is not None:
                fault[key] = value
        return self.admin("POST", "faults", json_body=fault)

    def clear_faults(self):
        """Removes every queued fault; how many there were."""
        return self.admin("DELETE", "faults")["cleared"]

    def revoke_tokens(self):
        """Every token issued so far answers 42001; how many were live."""
        return self.admin("POST", "tokens/revoke")["revoked"]

    def advance(self, seconds):
        """Moves the emulator's clock forward (3 days = 259200: media expire); the new time."""
        return self.admin("POST", "clock", json_body={"advance_secs": int(seconds)})["now"]

    def set_time(self, unix_seconds):
        """Sets the emulator's clock (forward or back); the new time."""
        return self.admin("POST", "clock", json_body={"now": int(unix_seconds)})["now"]

    def now(self):
        """The emulator's clock, Unix seconds."""
        return self.admin("GET", "clock")["now"]

    def add_media(self, data, filename, content_type=None, corp_id=None):
        """Stores ``data`` (bytes) as a media, as if uploaded now; its media id."""
        params = {"filename": filename}
        if content_type:
            params["content_type"] = content_type
        if corp_id:
            params["corp_id"] = corp_id
        return self.admin("POST", "media", data=bytes(data), params=params)["media_id"]

    def delete_media(self, media_id):
        """Removes a media (later gets answer 40007)."""
        self.admin("DELETE", "media/" + urllib.parse.quote(media_id, safe=""))

    def serve_file(self, data, name, range_support=True):
        """Serves ``data`` at a loopback URL (with Range unless ``range_support`` is false),
        for ``media/upload_by_url``; the URL."""
        params = {"name": name}
        if not range_support:
            params["range_support"] = "false"
        return self.admin("POST", "files", data=bytes(data), params=params)["url"]

    def requests(self):
        """The request log, oldest first (token and secret masked)."""
        return self.admin("GET", "requests")

    def clear_requests(self):
        """Clears the log and the request counts; how many entries went."""
        return self.admin("DELETE", "requests")["cleared"]

    def stats(self):
        """Requests per endpoint, eviction counters and what the store holds."""
        return self.admin("GET", "stats")

    def settings(self, **changes):
        """The run-time settings; keyword arguments change them first (``latency_ms``,
        ``upload_img_daily_quota``, ``limits={"file": 1024}``, ``strict_ids``, …)."""
        if changes:
            return self.admin("POST", "settings", json_body=changes)
        return self.admin("GET", "settings")

    def reset(self):
        """Back to the start state: media, tokens, clock, quota, faults, log, settings."""
        return self.admin("POST", "reset")

    # -- the process ----------------------------------------------------------------------

    def stop(self):
        """Stops the emulator process this object started (if any)."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
