# Makefile for the chat extension (PGXS).
#
# The PGXS include is guarded: on a fresh machine there is no pg_config PGXS
# file yet, and `make test` / `make demo` must still run to install it first.

EXTENSION   = chat
MODULE_big  = chat
EXTVERSION  = 1.1

CORE_SRCS   = $(sort $(wildcard src/core/*.c))
PG_SRCS     = $(sort $(wildcard src/pg/*.c))
WEB_FILES   = $(sort $(wildcard web/*)) clients/js/chat.js
OBJS        = $(CORE_SRCS:.c=.o) $(PG_SRCS:.c=.o) build/web_assets.o
DATA        = $(sort $(wildcard src/sql/chat--*.sql))

PG_CPPFLAGS = -Isrc -I$(libpq_srcdir) -Wall -Wextra -Werror -Wno-unused-parameter \
              -Wno-sign-compare -Wno-missing-field-initializers -Wno-clobbered
SHLIB_LINK  = -lwslay -ljansson -lssl -lcrypto
# libpq: the Citus node relay (src/pg/node_relay.c) listens on the nodes
SHLIB_LINK_INTERNAL = $(libpq)

PG_CONFIG  ?= pg_config
PGXS       := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

.PHONY: test demo deps unit format lint bench deb

ifneq ($(wildcard $(PGXS)),)
# Our functions gain nothing from JIT inlining; skip the clang bitcode.
override with_llvm = no
# Rebuild objects when a header they include changes.
override autodepend = yes
include $(PGXS)
else
all install:
	@echo "PostgreSQL server headers are missing: run 'make deps' first" >&2; exit 1
endif

# The demo page and the JS client, compiled into the library.
build/web_assets.c: $(WEB_FILES) tools/embed-assets
	@mkdir -p build
	tools/embed-assets $@ $(WEB_FILES)

EXTRA_CLEAN = build/web_assets.c build/web_assets.o

# Install the Debian packages the build and the tests need (root or sudo).
deps:
	@test/deps.sh

# Every test: unit (ASan/UBSan), pg_regress, isolation, integration, ...
test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory install
	@test/run

# The product: a throwaway cluster with the worker and demo data.
demo: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory install
	@demo/run

# The pure-C core's unit tests, built standalone with sanitizers.
unit:
	@test/unit/run

bench: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory install
	@BENCH_COMMAND="make bench" bench/run

# The Debian package postgresql-15-chat, built with pg_buildext against the
# installed PostgreSQL 15 (not the pg_config on PATH): build/deb/*.deb.
deb: deps
	@tools/deb

# pgindent's layout (pg_bsd_indent with PostgreSQL's options): tools/indent
format:
	@tools/indent

# The checks CI runs (test/lint/run): the core's file-level call graph has
# no cycle, cppcheck finds nothing, and every C file is formatted.
lint:
	@test/lint/run

# --- issue 17: chat-gateway, the core as a standalone program (src/gateway,
# docs/scaling.md).  Built apart from the extension's objects (other flags,
# no -fPIC, libpq), into build/gw/.  GATEWAY_CFLAGS=-fsanitize=... for ASan.
GW_SRCS     = $(CORE_SRCS) $(sort $(wildcard src/gateway/*.c)) build/web_assets.c
# make gateway GW_DIR=build/gw-asan GATEWAY_CFLAGS='-O1 -g -fsanitize=address,undefined'
# builds build/gw-asan/chat-gateway (test/gateway/run does)
GW_DIR     ?= build/gw
GW_BIN     ?= $(if $(filter build/gw,$(GW_DIR)),build/chat-gateway,$(GW_DIR)/chat-gateway)
GW_OBJS     = $(patsubst %.c,$(GW_DIR)/%.o,$(GW_SRCS))
GW_PQ_INC  := $(shell $(PG_CONFIG) --includedir 2>/dev/null)
GATEWAY_CFLAGS ?= -O2 -g
GW_CFLAGS   = $(GATEWAY_CFLAGS) -std=gnu11 -Isrc -I$(GW_PQ_INC) -D_GNU_SOURCE \
              -Wall -Wextra -Werror -Wno-unused-parameter -Wno-sign-compare \
              -Wno-missing-field-initializers -MMD -MP

.PHONY: gateway
gateway: $(GW_BIN)

$(GW_DIR)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(GW_CFLAGS) -c -o $@ $<

$(GW_BIN): $(GW_OBJS)
	$(CC) $(GATEWAY_CFLAGS) -o $@ $(GW_OBJS) -lpq -lwslay -ljansson -lssl -lcrypto

-include $(GW_OBJS:.o=.d)

ifneq ($(wildcard $(PGXS)),)
all: build/chat-gateway
# Not part of `make install`: the Debian package (make deb) would then ship
# it without its dependency on libpq5 being checked by test/package.
.PHONY: install-gateway
install-gateway: build/chat-gateway
	$(MKDIR_P) '$(DESTDIR)$(bindir)'
	$(INSTALL_PROGRAM) build/chat-gateway '$(DESTDIR)$(bindir)/chat-gateway'
endif
