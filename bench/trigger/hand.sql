-- (b) the hand-written outbox: a PL/pgSQL AFTER ROW trigger.
CREATE TRIGGER bench_trigger AFTER UPDATE ON accounts
	FOR EACH ROW EXECUTE FUNCTION outbox_hand_trigger();
