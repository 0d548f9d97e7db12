# emissions: a transactional event outbox for PostgreSQL (PGXS build)

MODULE_big = emissions
OBJS = \
	src/emissions.o \
	src/settings.o \
	src/stats.o \
	src/event_format.o \
	src/event_stream.o \
	src/storage.o \
	src/storage_outbox.o \
	src/storage_log.o \
	src/storage_state.o \
	src/storage_rotation.o \
	src/outbox.o \
	src/pending.o \
	src/buffer.o \
	src/api.o \
	src/trigger.o \
	src/row_json.o \
	src/jsonb_writer.o \
	src/extension.o \
	src/registry.o \
	src/wakeup.o \
	src/launcher.o \
	src/worker.o \
	src/pacing.o \
	src/delivery.o \
	src/delivery_collect.o \
	src/delivery_window.o \
	src/delivery_number.o \
	src/delivery_notify.o \
	src/delivery_log.o \
	src/delivery_dispatch.o \
	src/delivery_delete.o \
	src/envelope.o \
	src/adapters.o \
	src/adapter_admin.o \
	src/retries.o \
	src/event_log.o \
	src/subscriptions.o \
	src/wait.o \
	src/utility_hook.o

EXTENSION = emissions
DATA = sql/emissions--0.1.sql sql/emissions--0.2.sql \
	sql/emissions--0.1--0.2.sql
PGFILEDESC = "emissions - transactional event outbox"

# pg_regress inputs live in sql/, expected outputs in expected/.
REGRESS = api atomicity savepoints twophase spill bad_input stats privileges roles injection triggers jsonb_writer security subscriptions log_pages

# Several sessions at once: specs/ with the isolation tester.
ISOLATION = concurrent_buffers late_commit

# The module's version (shown by pg_get_loaded_modules() on 18): the
# extension's default_version.
EMISSIONS_VERSION = $(shell sed -n "s/^default_version *= *'\(.*\)'/\1/p" $(srcdir)/emissions.control)
PG_CPPFLAGS = -I$(srcdir)/src -DEMISSIONS_VERSION='"$(EMISSIONS_VERSION)"'

# The consumer command-line tool, a libpq client.  MODULE_big takes OBJS,
# so PROGRAM cannot build it: it has rules of its own, below.
CONSUMER = tools/emissions_consume

# The relay to NATS JetStream and HTTP webhooks (tools/relay/), on libpq,
# libnats, libcurl and OpenSSL's libcrypto (Debian: libnats-dev,
# libcurl4-openssl-dev, libssl-dev), found with pkg-config when it knows
# them.
RELAY = tools/emissions_relay
RELAY_SRCS = $(sort $(wildcard $(srcdir)/tools/relay/*.c))
RELAY_PKGS = libnats libcurl libcrypto
RELAY_CFLAGS = $(shell pkg-config --cflags $(RELAY_PKGS) 2>/dev/null)
RELAY_LIBS = $(or $(shell pkg-config --libs $(RELAY_PKGS) 2>/dev/null),\
	-lnats -lcurl -lcrypto)

EXTRA_CLEAN = $(CONSUMER) $(RELAY) .built-for

PG_CONFIG ?= pg_config
PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# PGXS does not track headers; rebuild every object when one changes.
$(OBJS): $(wildcard $(srcdir)/src/*.h)

# Built for another server (another PG_CONFIG, or the same version in
# another Debian release's environment, see test/pgenv.sh), everything is
# built again: it all depends on .built-for, which names the server, its
# headers and the compiler, and is rewritten only when they change.
BUILT_FOR = $(shell $(PG_CONFIG) --version) \
	$(shell $(PG_CONFIG) --includedir-server) $(shell $(CC) -dumpfullversion)
.built-for: FORCE
	@echo '$(BUILT_FOR)' | cmp -s - $@ || echo '$(BUILT_FOR)' >$@
$(OBJS) $(OBJS:.o=.bc) $(CONSUMER) $(RELAY): .built-for
FORCE:

# Build the consumer and the relay with the extension, install them next
# to psql.
all: $(CONSUMER) $(RELAY)

$(CONSUMER): $(srcdir)/tools/emissions_consume.c
	$(CC) $(CFLAGS) -I$(shell $(PG_CONFIG) --includedir) $< \
		-L$(shell $(PG_CONFIG) --libdir) -lpq $(LDFLAGS_EX) -o $@

$(RELAY): $(RELAY_SRCS) $(wildcard $(srcdir)/tools/relay/*.h)
	$(CC) $(CFLAGS) -I$(srcdir)/tools/relay \
		-I$(shell $(PG_CONFIG) --includedir) $(RELAY_CFLAGS) $(RELAY_SRCS) \
		-L$(shell $(PG_CONFIG) --libdir) -lpq $(RELAY_LIBS) -pthread \
		$(LDFLAGS_EX) -o $@

install: install-consumer

install-consumer: $(CONSUMER) $(RELAY) installdirs
	$(MKDIR_P) '$(DESTDIR)$(bindir)'
	$(INSTALL_PROGRAM) $(CONSUMER) '$(DESTDIR)$(bindir)/emissions_consume'
	$(INSTALL_PROGRAM) $(RELAY) '$(DESTDIR)$(bindir)/emissions_relay'

uninstall: uninstall-consumer

uninstall-consumer:
	rm -f '$(DESTDIR)$(bindir)/emissions_consume'
	rm -f '$(DESTDIR)$(bindir)/emissions_relay'

.PHONY: install-consumer uninstall-consumer FORCE
