"""`workbench serve`: the TUI's page served on loopback (a real server in a subprocess, fetched only from
127.0.0.1), the warning for any other address, and the message when textual-serve is missing."""
from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from tests.conftest import ROOT, workbench_cmd
from workbench import cli
from workbench import serve as serve_module


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fetch(url: str, headers: dict | None = None, tries: int = 100) -> str:
    """GET a loopback URL, retrying while the server starts (0.1 s apart, ``tries`` times at most)."""
    assert url.startswith("http://127.0.0.1:")
    last: Exception | None = None
    for _ in range(tries):
        try:
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as r:
                assert r.status == 200
                return r.read().decode()
        except (urllib.error.URLError, ConnectionError) as e:
            last = e
            time.sleep(0.1)
    raise AssertionError(f"{url} never answered: {last}")


def test_serve_serves_the_tui_page_on_loopback(runs_dir):
    port = free_port()
    proc = subprocess.Popen(workbench_cmd("--runs-dir", str(runs_dir), "serve", "--port", str(port)), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        page = fetch(f"http://127.0.0.1:{port}/")
        assert "<html" in page.lower() and "workbench" in page
        assert f"ws://127.0.0.1:{port}/ws" in page  # the terminal's websocket, at the address the browser used
        tunnelled = fetch(f"http://127.0.0.1:{port}/", headers={"Host": "127.0.0.1:9999"}, tries=1)
        assert "ws://127.0.0.1:9999/ws" in tunnelled  # ssh -L 9999:127.0.0.1:PORT: links follow the tunnel
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert f"http://127.0.0.1:{port}/" in out and "WARNING" not in err


class FakeServer:
    made: list[tuple] = []

    def __init__(self, command, host, port, public_url):
        FakeServer.made.append((command, host, port, public_url))

    def serve(self):
        pass


@pytest.fixture
def fake_server(monkeypatch):
    FakeServer.made = []
    monkeypatch.setattr(serve_module, "make_server", FakeServer)
    return FakeServer


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "gpu-box.lan"])
def test_a_non_loopback_host_warns_that_anyone_on_the_network_can_drive_training(runs_dir, fake_server, capsys,
                                                                                 host):
    assert cli.main(["--runs-dir", str(runs_dir), "serve", "--host", host, "--port", "8123"]) == 0
    err = capsys.readouterr().err
    assert "WARNING" in err and "anyone on the network" in err and "drive training" in err
    assert fake_server.made[0][1:3] == (host, 8123)


def test_loopback_is_the_default_and_quiet(runs_dir, fake_server, capsys):
    assert cli.main(["--runs-dir", str(runs_dir), "serve"]) == 0
    assert "WARNING" not in capsys.readouterr().err
    command, host, port, _ = fake_server.made[0]
    assert (host, port) == ("127.0.0.1", 8000)
    assert "-m workbench --runs-dir" in command and str(runs_dir) in command


def test_without_textual_serve_it_says_how_to_install_it(runs_dir, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "textual_serve", None)  # import fails as if not installed
    monkeypatch.setitem(sys.modules, "textual_serve.server", None)
    assert cli.main(["--runs-dir", str(runs_dir), "serve"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'workbench[serve]'" in err and len(err.splitlines()) <= 20
