"""A mail sink for the alarm tests: a real SMTP server (Debian's python3-aiosmtpd, installed by
`scripts/setup.sh test`) on a free loopback port that requires STARTTLS with the given
certificate, and prints each message it accepts as one JSON line on stdout.

    /usr/bin/python3 smtp_sink.py CERT KEY

Prints `listening PORT` first, then per message `{"mail_from", "rcpt_tos", "data", "tls"}`.
Runs until killed or stdin closes.
"""

import asyncio
import json
import ssl
import sys

from aiosmtpd.smtp import SMTP


class Sink:
    async def handle_DATA(self, server, session, envelope):
        print(
            json.dumps(
                {
                    "mail_from": envelope.mail_from,
                    "rcpt_tos": envelope.rcpt_tos,
                    "data": envelope.content.decode("utf-8", "replace"),
                    "tls": session.ssl is not None,
                }
            ),
            flush=True,
        )
        return "250 OK"


async def main(cert, key):
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(Sink(), hostname="sink.test", tls_context=tls, require_starttls=True),
        host="127.0.0.1",
        port=0,
    )
    print("listening", server.sockets[0].getsockname()[1], flush=True)
    # The test holds our stdin: when it goes (the test ended, or panicked), so do we.
    await loop.run_in_executor(None, sys.stdin.read)
    server.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
