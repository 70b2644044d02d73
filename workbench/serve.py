"""`workbench serve`: the TUI in a browser, through textual-serve (the optional extra `workbench[serve]`).

Each browser tab that connects gets its own TUI process (``python -m workbench --runs-dir DIR``); textual-serve
starts it through a shell, so every word of that command is quoted here. Closing the tab ends that TUI, never a
run (runs are detached, as from a terminal).

127.0.0.1 by default: from a laptop, ``ssh -L 8000:127.0.0.1:8000 HOST`` and open http://127.0.0.1:8000/. Any other
address (0.0.0.0, a LAN address, a host name) needs an explicit ``--host`` and gets a warning: there is no login,
so anyone who can reach the port can launch, stop and delete runs. The page's own links (its websocket, its static
files) follow the address the browser used, so a tunnel to another local port works; ``--public-url`` fixes them
(behind a proxy). textual-serve (aiohttp) is imported only by this command.
"""
from __future__ import annotations

import ipaddress
import re
import shlex
import sys
from pathlib import Path

EXIT_OK, EXIT_BAD_INPUT = 0, 2
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000
_HOST_HEADER = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")  # name[:port], [v6][:port]

NOT_INSTALLED = """\
workbench serve needs the textual-serve package, which is not installed here.

Install the optional extra:

    pip install 'workbench[serve]'
    (in a checkout: .venv/bin/pip install -e '.[serve]')

Then `workbench serve` shows this same TUI in a browser at http://127.0.0.1:8000/
(from a laptop: ssh -L 8000:127.0.0.1:8000 THIS_MACHINE first).
Without it, everything works in a terminal: `workbench`."""


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost. Anything else (0.0.0.0 included) is reachable from the network."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost: assume it is reachable


def network_warning(host: str, port: int) -> str:
    where = "every network interface of this machine" if host in ("0.0.0.0", "::") else host
    return (f"WARNING: serving the workbench on {where} (port {port}). There is no login: anyone on the network "
            f"who can reach this port can drive training (launch, stop and delete runs, run recipes' code). "
            f"Prefer the default 127.0.0.1 with an SSH tunnel: ssh -L {port}:127.0.0.1:{port} THIS_MACHINE")


def tui_command(runs_dir: Path) -> str:
    """The command textual-serve runs (through a shell) for each browser connection."""
    return shlex.join([sys.executable, "-m", "workbench", "--runs-dir", str(runs_dir)])


def make_server(command: str, host: str, port: int, public_url: str | None):
    """A textual-serve Server whose page links follow the Host the browser used (unless public_url is given)."""
    from textual_serve.server import Server

    class WorkbenchServer(Server):
        async def handle_index(self, request):
            if public_url is None and _HOST_HEADER.match(request.host or ""):
                self.public_url = f"{request.scheme}://{request.host}"  # read synchronously by the page's template
            return await super().handle_index(request)

    return WorkbenchServer(command, host=host, port=port, title="workbench", public_url=public_url)


def serve(runs_dir: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, public_url: str | None = None) -> int:
    try:
        import textual_serve.server  # noqa: F401 - only to know it is there
    except ImportError:
        print(NOT_INSTALLED, file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT
    if not 0 < port < 65536:
        print(f"--port {port}: not a TCP port (1-65535)", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT
    if not is_loopback(host):
        print(network_warning(host, port), file=sys.stderr, flush=True)
    shown = f"[{host}]" if ":" in host else host
    print(f"workbench serve: http://{shown}:{port}/ runs {runs_dir} (Ctrl-C stops serving; runs go on)", flush=True)
    server = make_server(tui_command(runs_dir), host, port, public_url)
    try:
        server.serve()
    except OSError as e:  # the port is taken, the address is not this machine's
        print(f"cannot serve on {host}:{port}: {e.strerror or e}", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        pass
    return EXIT_OK
