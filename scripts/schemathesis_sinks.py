"""Message sinks for the My Account API contract tests (scripts/schemathesis.sh).

The contract-test tenant enables the `email` and `phone` factors, so enrolling
them really sends a code: over SMTP to the SMTP server below, and by the signed
webhook to the HTTP receiver below. Both run in this one process:

  python schemathesis_sinks.py PORTS_FILE SECRET COUNTS_FILE

binds two free ports on 127.0.0.1, writes "SMTP_PORT HTTP_PORT" to PORTS_FILE
once both listen, and keeps COUNTS_FILE up to date with what arrived:
{"emails": n, "webhooks": n, "bad_signatures": n, "errors": [...]}.

The SMTP server speaks enough of RFC 5321 for a client that needs no
authentication and no TLS (EHLO/HELO, MAIL, RCPT, DATA, RSET, NOOP, QUIT).
The webhook receiver checks `X-Latchkey-Signature: t=<unix>,v1=<hex>` (HMAC-SHA256
of "<t>.<body>" under SECRET) and the JSON body, answering 200, or 401 for a bad
signature (so a broken signature fails the run: the enrollment answers 400).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import sys

counts = {"emails": 0, "webhooks": 0, "bad_signatures": 0, "errors": []}
counts_file = ""


def save() -> None:
    with open(counts_file, "w", encoding="utf-8") as fd:
        json.dump(counts, fd)


async def smtp_session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    async def reply(line: str) -> None:
        writer.write(line.encode() + b"\r\n")
        await writer.drain()

    try:
        await reply("220 sink ESMTP")
        while True:
            raw = await reader.readline()
            if not raw:
                return
            verb = raw.decode("utf-8", "replace").strip().split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                await reply("250 sink")
            elif verb in ("MAIL", "RCPT", "RSET", "NOOP"):
                await reply("250 OK")
            elif verb == "DATA":
                await reply("354 end with <CRLF>.<CRLF>")
                size = 0
                while True:
                    line = await reader.readline()
                    if not line:
                        return
                    size += len(line)
                    if line in (b".\r\n", b".\n"):
                        break
                    if size > 1_000_000:
                        await reply("552 too big")
                        return
                counts["emails"] += 1
                save()
                await reply("250 queued")
            elif verb == "QUIT":
                await reply("221 bye")
                return
            else:
                await reply("502 not implemented")
    except (ConnectionError, asyncio.IncompleteReadError):
        return
    finally:
        writer.close()


def signature_ok(secret: bytes, header: str, body: bytes) -> bool:
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    t, v1 = parts.get("t", ""), parts.get("v1", "")
    expected = hmac.new(secret, t.encode() + b"." + body, hashlib.sha256).hexdigest()
    return bool(t) and hmac.compare_digest(expected, v1)


async def http_session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, secret: bytes) -> None:
    async def respond(status: str) -> None:
        writer.write(f"HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".encode())
        await writer.drain()

    try:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = await reader.readexactly(length) if length else b""
        if not signature_ok(secret, headers.get("x-latchkey-signature", ""), body):
            counts["bad_signatures"] += 1
            save()
            await respond("401 Unauthorized")
            return
        message = json.loads(body)
        if message.get("type") not in ("sms", "voice") or not str(message.get("to", "")).startswith("+"):
            counts["errors"].append(f"unexpected webhook body: {body[:200]!r}")
            save()
            await respond("400 Bad Request")
            return
        counts["webhooks"] += 1
        save()
        await respond("200 OK")
    except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as exc:
        counts["errors"].append(f"webhook request: {exc}")
        save()
    finally:
        writer.close()


async def main() -> None:
    global counts_file
    ports_file, secret, counts_file = sys.argv[1], sys.argv[2].encode(), sys.argv[3]
    save()
    smtp = await asyncio.start_server(smtp_session, "127.0.0.1", 0)
    http = await asyncio.start_server(lambda r, w: http_session(r, w, secret), "127.0.0.1", 0)
    smtp_port = smtp.sockets[0].getsockname()[1]
    http_port = http.sockets[0].getsockname()[1]
    with open(ports_file + ".part", "w", encoding="utf-8") as fd:
        fd.write(f"{smtp_port} {http_port}\n")
    os.replace(ports_file + ".part", ports_file)
    async with smtp, http:
        await asyncio.gather(smtp.serve_forever(), http.serve_forever())


if __name__ == "__main__":
    asyncio.run(main())
