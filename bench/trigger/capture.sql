-- Control (not one of the issue's variants): a statement-level trigger with
-- the same transition tables that does nothing with them.  It shows what
-- PostgreSQL charges for capturing the rows into the transition tables,
-- a floor under the statement-level emissions_trigger().
CREATE TRIGGER bench_trigger AFTER UPDATE ON accounts
	REFERENCING NEW TABLE AS n OLD TABLE AS o
	FOR EACH STATEMENT EXECUTE FUNCTION bench_noop_trigger();
