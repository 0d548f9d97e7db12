# emissions: a transactional event outbox for PostgreSQL (PGXS build)

MODULE_big = emissions
OBJS = \
	src/emissions.o \
	src/settings.o \
	src/stats.o \
	src/event_format.o \
	src/event_stream.o \
	src/outbox.o \
	src/pending.o \
	src/buffer.o \
	src/api.o \
	src/trigger.o \
	src/extension.o \
	src/registry.o \
	src/wakeup.o \
	src/launcher.o \
	src/worker.o \
	src/delivery.o \
	src/envelope.o \
	src/adapters.o \
	src/adapter_admin.o \
	src/retries.o \
	src/event_log.o \
	src/rotation.o \
	src/wait.o \
	src/utility_hook.o

EXTENSION = emissions
DATA = sql/emissions--0.1.sql
PGFILEDESC = "emissions - transactional event outbox"

# pg_regress inputs live in sql/, expected outputs in expected/.
REGRESS = api atomicity savepoints twophase spill bad_input stats privileges triggers

# Several sessions at once: specs/ with the isolation tester.
ISOLATION = concurrent_buffers late_commit

PG_CPPFLAGS = -I$(srcdir)/src

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS does not track headers; rebuild every object when one changes.
$(OBJS): $(wildcard $(srcdir)/src/*.h)
