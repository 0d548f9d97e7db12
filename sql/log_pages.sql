-- Pages of the event log (emissions_events, emissions_read, emissions_event).
-- A log row holds one transaction's events, so a page of n events may take
-- far fewer than n rows: the rows are read in batches, a few first, then as
-- many as the rest of the page needs at the rows' mean size so far, at
-- least twice the last batch (src/storage_log.c).  Every page must still
-- be exactly the events after after_id, in id order, max of them at most,
-- wherever it starts and ends: at a row's edge or inside one, across
-- small rows after big ones and big ones after small ones.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS emissions;
RESET client_min_messages;
\i sql/include/delivered.psql
SELECT last_id AS base FROM delivery_mark \gset

-- 220 events in 84 transactions, a log row each: 40 of one event, 3 of 30,
-- 40 of one, 1 of 50.  Payload n counts the events from 1 in emit order,
-- so an event's id is the mark plus its n.
\set ECHO none
\o /dev/null
WITH sizes(ord, size) AS (
	SELECT g, 1 FROM generate_series(1, 40) AS g
	UNION ALL SELECT 40 + g, 30 FROM generate_series(1, 3) AS g
	UNION ALL SELECT 43 + g, 1 FROM generate_series(1, 40) AS g
	UNION ALL SELECT 84, 50),
ranges AS (
	SELECT ord, sum(size) OVER (ORDER BY ord) - size + 1 AS lo,
		   sum(size) OVER (ORDER BY ord) AS hi
	  FROM sizes)
SELECT format('BEGIN; SELECT emissions_start();'
			  ' SELECT count(emissions_emit(%L, jsonb_build_object(%L, g)))'
			  ' FROM generate_series(%s, %s) AS g; COMMIT',
			  'page.test', 'n', lo, hi)
  FROM ranges ORDER BY ord
\gexec
\o
\set ECHO all
SELECT emissions_wait_delivered() AS delivered;

-- They are 84 rows of the log, the biggest holding 50 events.
SELECT count(*) AS log_rows, max(last_id - first_id + 1) AS biggest
  FROM emissions_log WHERE last_id > :base;

-- The whole stream in one page: each event once, in emit order.
SELECT count(*) AS events,
	   count(*) FILTER (WHERE e.id - :base = (e.payload->>'n')::bigint) AS in_order
  FROM emissions_events(:base, 1000000) AS e;

-- Pages from 15 starting points (inside the 30-event rows and the 50-event
-- one, at their edges, at the end) and of 10 sizes: each is the events
-- after its start, as many as asked for or as there are.
CREATE TEMP TABLE page_checks AS
SELECT a.after, m.max,
	   ARRAY(SELECT (e.payload->>'n')::bigint
			   FROM emissions_events(:base + a.after, m.max) AS e
			  ORDER BY e.id) AS got,
	   ARRAY(SELECT e.id - :base
			   FROM emissions_events(:base + a.after, m.max) AS e
			  ORDER BY e.id) AS ids,
	   ARRAY(SELECT g::bigint
			   FROM generate_series(a.after + 1, least(a.after + m.max, 220)) AS g)
		   AS wanted
  FROM (VALUES (0), (1), (17), (39), (40), (41), (55), (70), (100), (130),
			   (131), (170), (171), (200), (220)) AS a(after),
	   (VALUES (1), (2), (15), (16), (17), (33), (50), (100), (219), (1000))
		   AS m(max);
SELECT count(*) AS pages,
	   count(*) FILTER (WHERE got = wanted AND ids = wanted) AS right_pages,
	   sum(cardinality(got)) AS events_read
  FROM page_checks;
SELECT after, max, got, wanted FROM page_checks
 WHERE got <> wanted OR ids <> wanted
 ORDER BY after, max;

-- The rows come back in id order however the batches fall: a page that
-- starts in the middle of the 50-event row.
SELECT (e.payload->>'n')::int AS n
  FROM emissions_events(:base + 195, 5) AS e ORDER BY e.id;

-- emissions_read() pages a subscription the same way, and does not move it.
SELECT emissions_subscribe('pages_sub', :base + 41) - :base AS position;
SELECT count(*) AS events, min(e.id) - :base AS first, max(e.id) - :base AS last,
	   bool_and(e.id - :base = (e.payload->>'n')::bigint) AS in_order
  FROM emissions_read('pages_sub', 100) AS e;
SELECT count(*) AS events, min(e.id) - :base AS first, max(e.id) - :base AS last
  FROM emissions_read('pages_sub', 1000) AS e;
SELECT emissions_unsubscribe('pages_sub');

-- One event by id, inside a row of many.
SELECT (payload->>'n')::int AS n FROM emissions_event(:base + 100);
SELECT (payload->>'n')::int AS n FROM emissions_event(:base + 221);
