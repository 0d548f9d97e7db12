-- bench/trigger/setup.sql: the tables and functions of bench/trigger.sh
-- (psql, variable rows: how many accounts).
CREATE EXTENSION emissions;

-- The table every variant updates: :rows accounts, ~60-byte rows.
CREATE TABLE accounts (
	id int PRIMARY KEY,
	balance int NOT NULL,
	name text NOT NULL,
	updated_at timestamptz NOT NULL
);
INSERT INTO accounts
	SELECT g, 1000, 'account ' || g, '2026-01-01 00:00:00+00'
	  FROM generate_series(1, :rows) AS g;

-- The realistic hand-written outbox: a bigserial key, jsonb columns.
CREATE TABLE outbox_hand (
	id bigserial PRIMARY KEY,
	type text NOT NULL,
	payload jsonb NOT NULL,
	metadata jsonb NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);

-- A hand-written AFTER ROW trigger storing what emissions_trigger() emits:
-- type "<table>.<operation>", payload {"new": row, "old": row} (only the
-- rows an operation has), metadata {"schema", "table", "operation"}.
CREATE FUNCTION outbox_hand_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	op text := lower(TG_OP);
BEGIN
	INSERT INTO outbox_hand(type, payload, metadata)
	VALUES (TG_TABLE_NAME || '.' || op,
			CASE TG_OP
				WHEN 'INSERT' THEN jsonb_build_object('new', to_jsonb(NEW))
				WHEN 'DELETE' THEN jsonb_build_object('old', to_jsonb(OLD))
				ELSE jsonb_build_object('new', to_jsonb(NEW), 'old', to_jsonb(OLD))
			END,
			jsonb_build_object('schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME,
							   'operation', op));
	RETURN NULL;
END
$$;

-- One timed run: the UPDATE and its COMMIT, timed by clock_timestamp() in
-- the server.  CALL it outside a transaction block (psql -c): the COMMIT
-- inside ends the transaction that ran the UPDATE.  The milliseconds and
-- the number of rows updated are left in the session's settings bench.ms
-- and bench.rows.
CREATE PROCEDURE bench_update()
LANGUAGE plpgsql AS $$
DECLARE
	t0 timestamptz;
	t1 timestamptz;
	n bigint;
BEGIN
	COMMIT;		-- start from a fresh transaction
	t0 := clock_timestamp();
	UPDATE accounts SET balance = balance + 1;
	GET DIAGNOSTICS n = ROW_COUNT;
	COMMIT;
	t1 := clock_timestamp();
	PERFORM set_config('bench.ms',
		(extract(epoch FROM t1 - t0) * 1000)::numeric(12, 3)::text, false);
	PERFORM set_config('bench.rows', n::text, false);
END
$$;

-- The control's trigger function (bench/trigger/capture.sql).
CREATE FUNCTION bench_noop_trigger() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	RETURN NULL;
END
$$;
