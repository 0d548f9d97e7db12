-- Rule 10: bad input gets a clear error with a SQLSTATE, never a crash,
-- and a failed call leaves the buffer as it was.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS emissions;
RESET client_min_messages;

-- pg_temp.mark() and pg_temp.delivered(), to read back committed events
-- once delivered; the first mark is set.
\i sql/include/delivered.psql

\set VERBOSITY sqlstate

-- The type: NULL (22004), empty, too long, or outside [A-Za-z0-9_.:-]
-- (22023).  These are errors even without a buffer.
SELECT emissions_emit(NULL);
SELECT emissions_emit('');
SELECT emissions_emit(repeat('t', 256));
SELECT emissions_emit('order created');
SELECT emissions_emit('order/created');
SELECT emissions_emit('ordér.created');
SELECT emissions_emit(E'order\ncreated');
SELECT emissions_emit('order*');

-- The metadata must be a JSON object (22023).
SELECT emissions_emit('x', '{}', '[]');
SELECT emissions_emit('x', '{}', '"source"');
SELECT emissions_emit('x', '{}', 'null');
SELECT emissions_emit('x', '{}', '42');

-- Only the metadata's kind is checked: a payload may be any JSON value
-- (rolled back, so nothing is stored).
BEGIN;
SELECT emissions_start();
SELECT p AS payload, emissions_emit('bad.payload_kind', p::jsonb) AS accepted
  FROM unnest(ARRAY['[1]', '"s"', '42', 'null', 'true', '{}']) AS p;
SELECT pending_events FROM emissions_buffer_status();
ROLLBACK;

-- The messages say what is wrong.
\set VERBOSITY default
SELECT emissions_emit(NULL);
SELECT emissions_emit(repeat('t', 256));
SELECT emissions_emit('order created');
SELECT emissions_emit('x', '{}', '[]');
BEGIN READ ONLY;
SELECT emissions_emit('x');
ROLLBACK;
\set VERBOSITY sqlstate

-- A failed emit leaves the buffer and its events as they were; the
-- transaction can go on after a savepoint rollback.
BEGIN;
SELECT emissions_start();
SELECT emissions_emit('bad.kept', '{"n": 1}');
SAVEPOINT a;
SELECT emissions_emit('bad type');
ROLLBACK TO SAVEPOINT a;
SELECT emissions_active() AS active, pending_events
  FROM emissions_buffer_status();
COMMIT;
SELECT type, payload FROM pg_temp.delivered();

-- Emitting in a read-only transaction is refused (25006), with or without
-- a buffer; starting and inspecting a buffer is harmless and allowed.
BEGIN READ ONLY;
SELECT emissions_start();
SELECT emissions_emit('bad.read_only');
ROLLBACK;
SET default_transaction_read_only = on;
SELECT emissions_emit('bad.read_only');
RESET default_transaction_read_only;

-- Calls from a parallel operation are refused (25000).  The functions are
-- PARALLEL UNSAFE, so this needs a superuser to mislabel one first.
-- (force_parallel_mode is called debug_parallel_query from 16 on.)
BEGIN;
ALTER FUNCTION emissions_emit(text, jsonb, jsonb) PARALLEL SAFE;
ALTER FUNCTION emissions_start() PARALLEL SAFE;
SELECT set_config(CASE WHEN current_setting('server_version_num')::int < 160000
	THEN 'force_parallel_mode' ELSE 'debug_parallel_query' END, 'on', true) AS forced;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SELECT emissions_start();
ROLLBACK;
BEGIN;
ALTER FUNCTION emissions_emit(text, jsonb, jsonb) PARALLEL SAFE;
SELECT set_config(CASE WHEN current_setting('server_version_num')::int < 160000
	THEN 'force_parallel_mode' ELSE 'debug_parallel_query' END, 'on', true) AS forced;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SELECT emissions_emit('bad.parallel');
ROLLBACK;
SELECT proname, proparallel FROM pg_proc
 WHERE proname IN ('emissions_start', 'emissions_emit', 'emissions_flush',
                   'emissions_commit', 'emissions_terminate')
 ORDER BY proname;

-- emissions.max_buffer_bytes and emissions.log_dropped reject bad values,
-- and the emissions.* prefix is reserved for the extension's settings.
SET emissions.max_buffer_bytes = '1kB';
SET emissions.log_dropped = 'loud';
SET emissions.no_such_setting = 1;

-- Nothing above stored an event: since the start of this file, only
-- bad.kept and a marker committed now are delivered.
SELECT emissions_start(), emissions_emit('marker', '{"after": "bad_input"}');
SELECT type, payload FROM pg_temp.delivered();
