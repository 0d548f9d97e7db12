-- (c) emissions_trigger(), row level.
CREATE TRIGGER bench_trigger AFTER UPDATE ON accounts
	FOR EACH ROW EXECUTE FUNCTION emissions_trigger();
