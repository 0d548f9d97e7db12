#!/usr/bin/env python3
"""Print the events emissions delivers, one JSON object per line.

    python3 consume.py [CONNINFO] [--after ID] [--count N] [--poll SECONDS]
                       [--subscription NAME]

CONNINFO is a libpq connection string or URL; without it the PG* environment
variables apply.  The consumer LISTENs on the "emissions" channel, reads what
it missed since the last id it printed (--after, 0 for everything still
kept) with emissions_events(), then follows the notifications.  After a lost
connection it reconnects and catches up again from the last id it printed:
it misses no event still kept and prints no id twice.  --poll reads
emissions_events() every SECONDS instead of listening, for a
transaction-mode pooler, where LISTEN does not work.

--subscription NAME keeps the position in the database instead: it reads
with emissions_read(), and acknowledges each page with emissions_ack() once
it is printed and flushed; notifications only wake it up.  A new run
continues after the last acknowledgement, however long it was away (the
subscription is created if missing, after --after or from the newest
event; creating one needs EXECUTE on emissions_subscribe).  Needs psycopg 3
(Debian: python3-psycopg).
"""

import argparse
import json
import select
import sys
import time

import psycopg
from psycopg.rows import dict_row

PAGE = 1000
# The envelope's fields, spelled as in the notifications.
COLUMNS = """id, type, payload, metadata, to_json(emitted_at) AS emitted_at,
             txid::text::bigint AS txid, current_database() AS database"""
EVENTS = f"SELECT {COLUMNS} FROM emissions_events(%s, %s)"
EVENT = f"SELECT {COLUMNS} FROM emissions_event(%s)"
READ = f"SELECT {COLUMNS} FROM emissions_read(%s, %s)"


def complete(conn, event):
    """An envelope too large for NOTIFY lacks its payload: read it whole."""
    if event.get("payload_omitted") or event.get("metadata_omitted"):
        return conn.execute(EVENT, (event["id"],)).fetchone() or event
    return event


class Consumer:
    def __init__(self, args):
        self.args = args
        self.sub = args.subscription
        self.last = -1 if self.sub else args.after or 0  # last id printed
        self.printed = 0

    def emit(self, event):
        """Print an event unless it was already printed."""
        if event["id"] <= self.last:
            return
        print(json.dumps(event), flush=True)
        self.last = event["id"]
        self.printed += 1

    def done(self, conn):
        """Acknowledge what was printed (and flushed); stop after --count."""
        if self.sub and self.last > 0:
            conn.execute("SELECT emissions_ack(%s, %s)", (self.sub, self.last))
        if self.printed >= self.args.count > 0:
            sys.exit(0)

    def open_subscription(self, conn):
        """Start after the subscription's position; create it if missing."""
        try:
            # An acknowledgement of id 0 changes nothing: it returns the position.
            row = conn.execute("SELECT emissions_ack(%s, 0) AS position",
                               (self.sub,)).fetchone()
        except psycopg.errors.UndefinedObject:
            row = conn.execute("SELECT emissions_subscribe(%s, %s) AS position",
                               (self.sub, self.args.after)).fetchone()
        self.last = max(self.last, row["position"])

    def catch_up(self, conn):
        """Print every delivered event after the last one printed, in pages."""
        while True:
            if self.sub:
                rows = conn.execute(READ, (self.sub, PAGE)).fetchall()
            else:
                rows = conn.execute(EVENTS, (self.last, PAGE)).fetchall()
            for row in rows:
                self.emit(row)
                if self.printed == self.args.count:
                    break
            self.done(conn)
            if len(rows) < PAGE:
                return

    def follow(self, conn):
        if self.sub:
            self.open_subscription(conn)
        if self.args.poll:
            while True:
                self.catch_up(conn)
                time.sleep(self.args.poll)

        inbox = []
        conn.add_notify_handler(lambda n: inbox.append(json.loads(n.payload)))
        conn.execute("LISTEN emissions")  # 1. listen first,
        self.catch_up(conn)  # 2. then read what was missed,
        while True:  # 3. then follow the notifications.
            # Wait for the socket (or 10 s): a query then reads what arrived,
            # and fails if the connection was lost.
            select.select([conn], [], [], 10)
            conn.execute("SELECT 1")
            if self.sub and inbox:
                inbox.clear()  # only a wake-up: read through the subscription
                self.catch_up(conn)
            while inbox:
                event = inbox.pop(0)
                if event["id"] > self.last:
                    self.emit(complete(conn, event))
                    self.done(conn)

    def run(self):
        while True:
            try:
                with psycopg.connect(
                    self.args.conninfo,
                    autocommit=True,
                    row_factory=dict_row,
                    application_name="emissions-example-python",
                ) as conn:
                    self.follow(conn)
            except psycopg.OperationalError as e:
                reason = " ".join(str(e).split())
                print(f"consume.py: {reason}; reconnecting in 1 s",
                      file=sys.stderr, flush=True)
                time.sleep(1)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("conninfo", nargs="?", default="")
    p.add_argument("--after", type=int, default=None, metavar="ID",
                   help="start after this event id (default 0; with"
                   " --subscription, when creating it: the newest event)")
    p.add_argument("--count", type=int, default=0, metavar="N",
                   help="exit after printing N events")
    p.add_argument("--poll", type=float, default=0, metavar="SECONDS",
                   help="poll emissions_events() instead of LISTEN")
    p.add_argument("--subscription", metavar="NAME",
                   help="read through this subscription, acknowledging"
                   " what was printed")
    try:
        Consumer(p.parse_args()).run()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
