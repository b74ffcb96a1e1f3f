"""Runs the real `tessera` binary for the Python interop tests: the admin CLI, `tessera serve`
on an ephemeral port, and a sign-in on the hosted login page the way a browser does it.

Every wait is bounded; a server is always stopped (SIGTERM, then SIGKILL) when its `with`
block ends.
"""

import html
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlparse

import requests

REPO = Path(__file__).resolve().parents[2]
LISTENING = re.compile(r"tessera listening on (http://\S+) \(issuer (\S+)\)")


def tessera_bin() -> str:
    """The prebuilt binary (`cargo build -p tessera`), or $TESSERA_BIN."""
    path = os.environ.get("TESSERA_BIN") or str(REPO / "target" / "debug" / "tessera")
    if not Path(path).exists():
        raise RuntimeError(f"{path} does not exist: run `cargo build -p tessera` first")
    return path


def cli(database_url: str, *args: str, stdin: str | None = None) -> dict:
    """`tessera ARGS --database-url DB --json`, its JSON output."""
    command = [tessera_bin(), *args, "--database-url", database_url, "--json"]
    done = subprocess.run(command, input=stdin or "", capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return json.loads(done.stdout)


class Server:
    """`tessera serve --listen 127.0.0.1:0` on a fresh SQLite database, as a context manager.

    `setup(database_url)` runs before the server starts (the CLI writes the tenant).
    """

    def __init__(self, setup):
        self._setup = setup
        self._dir = tempfile.TemporaryDirectory(prefix="tessera-python-")
        self.database_url = f"sqlite://{self._dir.name}/t.db"
        self.stderr = ""
        self.tenant = None
        self.base_url = self.issuer = None
        self._process = None

    def __enter__(self):
        self.tenant = self._setup(self.database_url)
        self._process = subprocess.Popen(
            [tessera_bin(), "serve", "--listen", "127.0.0.1:0", "--database-url", self.database_url],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "RUST_LOG": "warn"},
            start_new_session=True,
        )
        threading.Thread(target=self._read_stderr, daemon=True).start()
        deadline = time.monotonic() + 30
        while (match := LISTENING.search(self.stderr)) is None:
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.__exit__(None, None, None)
                raise RuntimeError(f"tessera serve did not start:\n{self.stderr}")
            time.sleep(0.05)
        self.base_url, self.issuer = match.group(1), match.group(2)
        return self

    def _read_stderr(self):
        for line in self._process.stderr:
            self.stderr += line

    def __exit__(self, *_):
        if self._process and self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGTERM)
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait(timeout=5)
        self._dir.cleanup()

    @property
    def host(self) -> str:
        """What the Auth0 SDKs call the domain: host and port, no scheme."""
        return urlparse(self.base_url).netloc


def hidden_field(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    if match is None:
        raise AssertionError(f"no hidden field {name} in the page:\n{page[:2000]}")
    return html.unescape(match.group(1))


def sign_in(base_url: str, query: dict, email: str, password: str) -> dict:
    """/authorize with `query`, the hosted login form filled in as a browser does, and the
    resumed authorization: the parameters the application's callback receives."""
    browser = requests.Session()
    answer = browser.get(f"{base_url}/authorize?{urlencode(query)}", allow_redirects=False, timeout=10)
    assert answer.status_code == 302, (answer.status_code, answer.text[:500])
    page = browser.get(base_url + answer.headers["location"], timeout=10).text
    login = browser.post(
        f"{base_url}/u/login",
        data={
            "state": hidden_field(page, "state"),
            "csrf": hidden_field(page, "csrf"),
            "username": email,
            "password": password,
        },
        allow_redirects=False,
        timeout=10,
    )
    assert login.status_code == 303, (login.status_code, login.text[:500])
    resumed = browser.get(base_url + login.headers["location"], allow_redirects=False, timeout=10)
    assert resumed.status_code == 302, (resumed.status_code, resumed.text[:500])
    callback = urlparse(resumed.headers["location"])
    return {name: values[0] for name, values in parse_qs(callback.query).items()}
