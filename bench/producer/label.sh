# bench/producer/label.sh: label(), a producer scenario's name in reports.
# shellcheck shell=bash
#
# Sourced by bench/producer.sh and bench/versions.sh; KEY is a scenario key
# of producer.sh's SCENARIOS (the part before -N names the variant).

# Print what scenario KEY runs: label KEY.
label() {
	case "$1" in
	baseline) echo "baseline (business row only)" ;;
	control-*) echo "control: SELECT payload, not stored" ;;
	hand-*) echo "hand-written outbox INSERT" ;;
	notify-*) echo "pg_notify" ;;
	pgq-*) echo "PgQ pgq.insert_event" ;;
	emissions-*) echo "emissions_emit" ;;
	bulk-hand-*) echo "bulk: INSERT ... SELECT generate_series" ;;
	bulk-pgq-*) echo "bulk: pgq.insert_event over generate_series" ;;
	bulk-emissions-*) echo "bulk: emissions_emit over generate_series" ;;
	bulk-build-*) echo "bulk control: payloads built, not stored" ;;
	inline-control-*) echo "in-statement control: payloads built, not stored" ;;
	inline-hand-*) echo "in-statement hand-written outbox INSERT" ;;
	inline-notify-*) echo "in-statement pg_notify" ;;
	inline-pgq-*) echo "in-statement PgQ pgq.insert_event" ;;
	inline-emissions-*) echo "in-statement emissions_emit" ;;
	*) echo "$1" ;;
	esac
}
