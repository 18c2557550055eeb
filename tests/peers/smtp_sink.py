#!/usr/bin/env python3
"""A real SMTP server for kare's delivery tests (aiosmtpd).

Every message accepted is written to DIR as NNNN.eml (the raw message as received) with
NNNN.json beside it (the envelope: mail_from, rcpt_tos). Files appear atomically (written
under a temporary name, then renamed), so a test may read a file as soon as it sees it.

    smtp_sink.py --dir DIR [--host 127.0.0.1] [--port 0]
                 [--reject-first N] [--reject-code 451|550]

--reject-first N answers the first N messages' DATA with --reject-code (451: try again later;
550: refused for good) after writing them as rejected-NNNN.eml, so a test can compare a
refused attempt with the retry that follows. Prints "LISTENING <port>" on stdout once it
accepts connections; exits when its standard input closes (the test process went away) or on
SIGTERM.
"""

import argparse
import asyncio
import json
import os
import signal
import sys
import threading

from aiosmtpd.smtp import SMTP


class Sink:
    def __init__(self, out_dir, reject_first, reject_code):
        self.out_dir = out_dir
        self.reject_first = reject_first
        self.reject_code = reject_code
        self.count = 0

    def _write(self, name, data):
        tmp = os.path.join(self.out_dir, "." + name + ".tmp")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, os.path.join(self.out_dir, name))

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        n = self.count
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        if n <= self.reject_first:
            self._write("rejected-%04d.eml" % n, raw)
            if self.reject_code >= 500:
                return "%d 5.7.1 refused by the test sink" % self.reject_code
            return "%d 4.3.0 try again later (test sink)" % self.reject_code
        meta = {"mail_from": envelope.mail_from, "rcpt_tos": list(envelope.rcpt_tos)}
        # Envelope first: a test that sees the .eml may read the .json.
        self._write("%04d.json" % n, json.dumps(meta).encode())
        self._write("%04d.eml" % n, raw)
        return "250 2.0.0 OK queued as sink-%04d" % n


async def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dir", required=True)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--reject-first", type=int, default=0)
    p.add_argument("--reject-code", type=int, default=451)
    a = p.parse_args()
    os.makedirs(a.dir, exist_ok=True)

    handler = Sink(a.dir, a.reject_first, a.reject_code)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, decode_data=False, hostname="smtp-sink.test"),
        host=a.host,
        port=a.port,
    )
    port = server.sockets[0].getsockname()[1]
    print("LISTENING %d" % port, flush=True)

    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    def watch_stdin():
        # EOF on stdin: whoever started us is gone; do not linger as an orphan.
        try:
            sys.stdin.buffer.read()
        finally:
            loop.call_soon_threadsafe(stop.set)

    threading.Thread(target=watch_stdin, daemon=True).start()
    await stop.wait()
    server.close()
    await server.wait_closed()


if __name__ == "__main__":
    asyncio.run(main())
