#!/usr/bin/env node
// Print the events emissions delivers, one JSON object per line.
//
//     node consume.js [URL] [--after ID] [--count N] [--poll SECONDS]
//                     [--subscription NAME]
//
// URL is a postgres:// connection URL; without it the PG* environment
// variables apply.  The consumer LISTENs on the "emissions" channel, reads
// what it missed since the last id it printed (--after, 0 for everything
// still kept) with emissions_events(), then follows the notifications.  After
// a lost connection it reconnects and catches up again from the last id it
// printed: it misses no event still kept and prints no id twice.  --poll reads
// emissions_events() every SECONDS instead of listening, for a
// transaction-mode pooler, where LISTEN does not work.
//
// --subscription NAME keeps the position in the database instead: it reads
// with emissions_read(), and acknowledges each page with emissions_ack()
// once it is written out; notifications only wake it up.  A new run
// continues after the last acknowledgement, however long it was away (the
// subscription is created if missing, after --after or from the newest
// event; creating one needs EXECUTE on emissions_subscribe).  Needs pg
// (npm ci).
'use strict';
const { parseArgs } = require('node:util');
const pg = require('pg');

pg.types.setTypeParser(pg.types.builtins.INT8, Number); // ids fit a Number

const PAGE = 1000;
// The envelope's fields, spelled as in the notifications.
const COLUMNS = `id, type, payload, metadata,
  to_json(emitted_at) AS emitted_at, txid::text::bigint AS txid,
  current_database() AS database`;
const EVENTS = `SELECT ${COLUMNS} FROM emissions_events($1, $2)`;
const EVENT = `SELECT ${COLUMNS} FROM emissions_event($1)`;
const READ = `SELECT ${COLUMNS} FROM emissions_read($1, $2)`;

const { values: opts, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    after: { type: 'string' },
    count: { type: 'string', default: '0' },
    poll: { type: 'string', default: '0' },
    subscription: { type: 'string' },
  },
});
const count = Number(opts.count);
const poll = Number(opts.poll);
const sub = opts.subscription;
let last = sub ? -1 : Number(opts.after || 0); // the last id printed
let printed = 0;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Print an event unless it was already printed.
function emit(event) {
  if (event.id <= last) return;
  process.stdout.write(JSON.stringify(event) + '\n');
  last = event.id;
  printed += 1;
}

// Wait until what was written to stdout is handed to the system.
const drained = () => new Promise((resolve) => process.stdout.write('', resolve));

// Acknowledge what was printed (once written out); stop after --count.
async function done(client) {
  if (sub && last > 0) {
    await drained();
    await client.query('SELECT emissions_ack($1, $2)', [sub, last]);
  }
  if (count > 0 && printed >= count) {
    await drained();
    process.exit(0);
  }
}

// Start after the subscription's position; create it if missing.
async function openSubscription(client) {
  let position;
  try {
    // An acknowledgement of id 0 changes nothing: it returns the position.
    ({ rows: [{ position }] } = await client.query(
      'SELECT emissions_ack($1, 0) AS position', [sub]));
  } catch (err) {
    if (err.code !== '42704') throw err; // 42704: there is none
    ({ rows: [{ position }] } = await client.query(
      'SELECT emissions_subscribe($1, $2) AS position',
      [sub, opts.after === undefined ? null : Number(opts.after)]));
  }
  last = Math.max(last, position);
}

// Print every delivered event after the last one printed, in pages.
async function catchUp(client) {
  for (;;) {
    const { rows } = sub
      ? await client.query(READ, [sub, PAGE])
      : await client.query(EVENTS, [last, PAGE]);
    for (const row of rows) {
      emit(row);
      if (printed === count) break;
    }
    await done(client);
    if (rows.length < PAGE) return;
  }
}

// An envelope too large for NOTIFY lacks its payload: read the event whole.
async function complete(client, event) {
  if (!event.payload_omitted && !event.metadata_omitted) return event;
  const { rows } = await client.query(EVENT, [event.id]);
  return rows[0] || event;
}

async function follow(client, lost) {
  if (sub) await openSubscription(client);
  if (poll > 0) {
    for (;;) {
      await catchUp(client);
      await Promise.race([lost, sleep(poll * 1000)]);
    }
  }
  // Notifications wait in the inbox until the catch-up is done.
  const inbox = [];
  let wake = () => {};
  client.on('notification', (msg) => {
    inbox.push(JSON.parse(msg.payload));
    wake();
  });
  await client.query('LISTEN emissions'); // 1. listen first,
  await catchUp(client); //                  2. then read what was missed,
  for (;;) { //                              3. then follow the notifications.
    if (sub && inbox.length > 0) {
      inbox.length = 0; // only a wake-up: read through the subscription
      await catchUp(client);
    }
    while (inbox.length > 0) {
      const event = inbox.shift();
      if (event.id > last) {
        emit(await complete(client, event));
        await done(client);
      }
    }
    await Promise.race([lost, new Promise((resolve) => { wake = resolve; })]);
  }
}

async function main() {
  for (;;) {
    const client = new pg.Client({
      connectionString: positionals[0],
      application_name: 'emissions-example-node',
    });
    // Rejects when the connection fails or ends, whatever is waiting.
    const lost = new Promise((resolve, reject) => {
      client.on('error', reject);
      client.on('end', () => reject(new Error('connection closed')));
    });
    lost.catch(() => {});
    try {
      await client.connect();
      await follow(client, lost);
    } catch (err) {
      console.error(`consume.js: ${err.message}; reconnecting in 1 s`);
      client.end().catch(() => {});
      await sleep(1000);
    }
  }
}

process.on('SIGINT', () => process.exit(0));
main();
