/**
 * The entry script of the local `drover/postgres` image (images.ts), run by /bin/sh as the
 * container's first process:
 * - the first start runs initdb into $PGDATA (default /data/pgdata, on the drover volume):
 *   trust authentication, listening on every address — a test image, never a production one;
 * - PostgreSQL runs as `postgres` through setpriv (which execs, so signals reach it directly);
 * - SIGTERM (what `docker stop` sends by default) becomes SIGINT, PostgreSQL's *fast*
 *   shutdown: clients are disconnected, a shutdown checkpoint is written, it exits. Its own
 *   SIGTERM is a *smart* shutdown, which waits for every client to leave — under a steady
 *   client that is the whole stop timeout.
 */
export const POSTGRES_ENTRY_PATH = '/usr/local/bin/drover-postgres';

export const POSTGRES_ENTRY = `#!/bin/sh
set -eu
BIN=$(ls -d /usr/lib/postgresql/*/bin | tail -n 1)
PGDATA=\${PGDATA:-/data/pgdata}
mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  setpriv --reuid=postgres --regid=postgres --init-groups "$BIN/initdb" -D "$PGDATA" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
  echo "listen_addresses = '*'" >> "$PGDATA/postgresql.conf"
  echo "host all all 0.0.0.0/0 trust" >> "$PGDATA/pg_hba.conf"
fi
# Started directly (not through a shell function, which would be a subshell between the
# trap and PostgreSQL), so $! is PostgreSQL itself.
setpriv --reuid=postgres --regid=postgres --init-groups "$BIN/postgres" -D "$PGDATA" "$@" &
pid=$!
stopping=0
trap 'stopping=1; kill -INT "$pid" 2>/dev/null || true' TERM INT
status=0
wait "$pid" || status=$?
# A trapped signal ends the first wait early: wait for PostgreSQL itself, and exit with its status.
if [ "$stopping" = 1 ]; then status=0; wait "$pid" || status=$?; fi
exit "$status"
`;
