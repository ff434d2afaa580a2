"""``python -m sandbox serve --info-file PATH [--seed demo|empty] [--host 127.0.0.1]``."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from sandbox.core.server import Sandbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the emulators in the foreground")
    serve.add_argument("--info-file", required=True, type=Path)
    serve.add_argument("--seed", choices=["demo", "empty"], default="demo")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--state-dir", type=Path, help="where the TLS files go (default: temp)")
    args = parser.parse_args(argv)

    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    sandbox = Sandbox(profile=args.seed, host=args.host, state_dir=args.state_dir).start()
    try:
        sandbox.write_info(args.info_file)
        urls = ", ".join(f"{n} {s.base_url}" for n, s in sandbox.servers.items())
        print(f"sandbox ready ({args.seed}): {urls}; info file {args.info_file}", flush=True)
        stop.wait()
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
