#!/usr/bin/env python3
"""test/helpers/webhook_receiver.py: a webhook receiver for the relay tests.

    webhook_receiver.py --port-file FILE --log FILE [--chaos PERCENT]
                        [--status CODE] [--secret-file FILE] [--delay SECONDS]
                        [--refuse-id ID [--refuse-status CODE]
                         [--refuse-for SECONDS]]

Listens on 127.0.0.1 on a free port (written to --port-file), HTTP/1.1 with
keep-alive, and answers every POST.  Each request is logged to --log as one
JSON line: the Idempotency-Key, the event ids in the body (an envelope, a
JSON array of them, CloudEvents in binary mode by its ce-id header or in
batched mode), the answer given, whether the Emissions-Signature checked
out against the secret (null without --secret-file), the CloudEvents
headers, the body, the time it came (time.time()) and how many requests
were being handled at that moment, this one included ("active": each
connection is served by a thread of its own, so requests on several
connections overlap).

--status answers every request with that code.  --chaos PERCENT makes that
share of the requests misbehave, evenly among: 500, 503, 429 with
Retry-After: 1, a slow answer (1.5 s, past a 1 s client timeout, then the
connection is closed), and a dropped connection (closed without an answer).
The rest get 200 (or 204).  --delay holds every answer that long.
--refuse-id answers the requests that carry that event with --refuse-status
(default 503) for --refuse-for seconds from the first of them (default:
for ever), and the others as above.
"""
import argparse
import hashlib
import hmac
import http.server
import json
import os
import random
import socket
import threading
import time

parser = argparse.ArgumentParser()
parser.add_argument("--port-file", required=True)
parser.add_argument("--log", required=True)
parser.add_argument("--chaos", type=float, default=0.0)
parser.add_argument("--status", type=int, default=0)
parser.add_argument("--secret-file")
parser.add_argument("--delay", type=float, default=0.0)
parser.add_argument("--refuse-id", type=int)
parser.add_argument("--refuse-status", type=int, default=503)
parser.add_argument("--refuse-for", type=float)
args = parser.parse_args()

secret = None
if args.secret_file:
    with open(args.secret_file, "rb") as f:
        secret = f.read().rstrip(b"\r\n")
log = open(args.log, "a", buffering=1)
log_lock = threading.Lock()
active = 0
refused_since = None


def verify(header, body):
    """Check an Emissions-Signature header "t=T,v1=HEX" against the body."""
    if secret is None:
        return None
    if not header:
        return False
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    expected = hmac.new(secret, parts.get("t", "").encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


def event_ids(headers, body):
    """The event ids a request carries."""
    if headers.get("ce-id"):
        return [int(headers["ce-id"])]
    doc = json.loads(body)
    items = doc if isinstance(doc, list) else [doc]
    return [int(item["id"]) for item in items]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        super().setup()
        # Headers and body are written apart: without this, Nagle's
        # algorithm and the client's delayed ACK cost 40 ms a request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, *a):
        pass

    def do_POST(self):
        global active
        with log_lock:
            active += 1
        try:
            self.answer()
        finally:
            with log_lock:
                active -= 1

    def refusing(self, ids):
        """Whether --refuse-id refuses this request."""
        global refused_since
        if args.refuse_id not in ids:
            return False
        with log_lock:
            if refused_since is None:
                refused_since = time.time()
        return args.refuse_for is None or \
            time.time() < refused_since + args.refuse_for

    def answer(self):
        """Log the request, then answer it as the options say."""
        arrived = time.time()
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        ids = event_ids(self.headers, body)
        if self.refusing(ids):
            outcome = args.refuse_status
        elif args.status:
            outcome = args.status
        elif random.random() * 100 < args.chaos:
            outcome = random.choice([500, 503, 429, "slow", "drop"])
        else:
            outcome = random.choice([200, 204])
        record = {
            "key": self.headers.get("Idempotency-Key"),
            "ids": ids,
            "outcome": outcome,
            "signature": self.headers.get("Emissions-Signature"),
            "signature_ok": verify(self.headers.get("Emissions-Signature"),
                                   body),
            "content_type": self.headers.get("Content-Type"),
            "ce": {k.lower(): v for k, v in self.headers.items()
                   if k.lower().startswith("ce-") or
                   k.lower() in ("traceparent", "tracestate")},
            "extra": self.headers.get("X-Relay-Test"),
            "body": body.decode(),
            "time": arrived,
        }
        with log_lock:
            record["active"] = active
            log.write(json.dumps(record) + "\n")
        if args.delay:
            time.sleep(args.delay)
        if outcome == "drop":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if outcome == "slow":
            time.sleep(1.5)
            self.close_connection = True
            return
        self.send_response(outcome)
        if outcome == 429:
            self.send_header("Retry-After", "1")
        answer = b"" if outcome == 204 else b'{"ok": %s}' % (
            b"true" if outcome < 300 else b"false")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


class Server(http.server.ThreadingHTTPServer):
    # Room for the connections of a relay with --parallel (the default
    # backlog of 5 drops SYNs: a connection would wait 1 s to retry).
    request_queue_size = 128


server = Server(("127.0.0.1", 0), Handler)
server.daemon_threads = True
with open(args.port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(args.port_file + ".tmp", args.port_file)
server.serve_forever()
