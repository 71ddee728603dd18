"""A real SMTP server for the mail tests: aiosmtpd's SMTP protocol on
127.0.0.1, configured to store every accepted message as a file.

Usage: python3 smtp_server.py --dir DIR [--port N] [--reject REGEX]

- Prints "PORT <n>" on stdout once it accepts connections (port 0 picks a free one).
- Each accepted message is written whole to DIR/<n>.eml (written under a
  temporary name, then renamed).
- A recipient matching --reject (a Python regex) is refused with
  "550 5.1.1 mailbox unavailable"; each refusal appends a line to DIR/rejected.log.
- If DIR/tempfail exists, every recipient is refused with "451 4.3.0 try again later".
- Stops when its standard input closes (the test process ended) or on SIGTERM.
"""

import argparse
import asyncio
import itertools
import os
import re
import sys

from aiosmtpd.smtp import SMTP


class Handler:
    def __init__(self, directory, reject):
        self.directory = directory
        self.reject = re.compile(reject) if reject else None
        self.counter = itertools.count(1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if os.path.exists(os.path.join(self.directory, "tempfail")):
            return "451 4.3.0 try again later"
        if self.reject and self.reject.search(address):
            with open(os.path.join(self.directory, "rejected.log"), "a") as log:
                log.write(address + "\n")
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        n = next(self.counter)
        final = os.path.join(self.directory, "%06d.eml" % n)
        partial = final + ".partial"
        with open(partial, "wb") as f:
            f.write(envelope.original_content)
        os.rename(partial, final)
        return "250 2.0.0 message accepted"


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--reject", default=None)
    args = parser.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    handler = Handler(args.dir, args.reject)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(handler, hostname="smtp.test", enable_SMTPUTF8=True),
        host="127.0.0.1",
        port=args.port,
    )
    port = server.sockets[0].getsockname()[1]
    print("PORT %d" % port, flush=True)
    stdin_closed = loop.create_future()

    def watch_stdin():
        # Blocks in a thread until the parent closes the pipe or dies.
        sys.stdin.read()
        loop.call_soon_threadsafe(lambda: stdin_closed.done() or stdin_closed.set_result(None))

    loop.run_in_executor(None, watch_stdin)
    await stdin_closed
    server.close()


if __name__ == "__main__":
    asyncio.run(main())
