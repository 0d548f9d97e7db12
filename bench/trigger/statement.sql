-- (d) emissions_trigger(), statement level with transition tables.
CREATE TRIGGER bench_trigger AFTER UPDATE ON accounts
	REFERENCING NEW TABLE AS n OLD TABLE AS o
	FOR EACH STATEMENT EXECUTE FUNCTION emissions_trigger();
