#!/bin/sh
# The image's entrypoint, shaped like the official redis image's so dumpling drops in where
# that image is used:
#   docker run dumpling                        -> the server, reachable from outside the container
#   docker run dumpling --port 7000            -> options (or a *.conf file first) go to the server
#   docker run dumpling redis-server --requirepass s   (what testcontainers' RedisContainer runs)
#   docker run dumpling dumpling-server ...    -> the server with those arguments
#   docker run dumpling sh                     -> anything else runs as given
# As the official image (its Redis is built with protected mode off and listens everywhere),
# the server listens on every interface, protected mode off, unless the arguments, the
# environment or the config file set bind / protected-mode themselves.
#
# Configuration from the environment, as redis-stack's and Bitnami's images take it (the
# official redis image takes none). The options they give come after a config file and before
# the command line's own options, so the command line wins:
#   REDIS_ARGS, REDIS_EXTRA_FLAGS   more server options, split at white space
#                                   (REDIS_ARGS="--maxmemory 100mb --appendonly yes")
#   REDIS_PASSWORD                  requirepass (REDIS_PASSWORD_FILE: read it from that file)
#   REDIS_PORT_NUMBER               port
#   REDIS_AOF_ENABLED=yes|no        appendonly
#   REDIS_RDB_POLICY="900#1 60#1000" save points; REDIS_RDB_POLICY_DISABLED=yes: save ""
#   REDIS_DISABLE_COMMANDS=FLUSHDB,FLUSHALL   rename-command NAME ""
#   REDIS_ACLFILE                   aclfile
#   REDIS_IO_THREADS                io-threads
#   REDIS_REPLICATION_MODE=replica with REDIS_MASTER_HOST, REDIS_MASTER_PORT_NUMBER (6379),
#     REDIS_MASTER_USER, REDIS_MASTER_PASSWORD (else REDIS_PASSWORD): replicaof / masterauth
# Bitnami's ALLOW_EMPTY_PASSWORD is not needed (no password is required unless one is set) and
# REDIS_TLS_ENABLED=yes is refused: dumpling has no TLS.
set -e
case "$1" in
    redis-server|dumpling-server) shift ;;
    ""|-*|*.conf) ;;
    *) exec "$@" ;;
esac
conf=""
case "$1" in *.conf) conf=$1; shift ;; esac
say() { echo "docker-entrypoint: $*" >&2; }

# The environment's options go after the command line's ones, which are then rotated to the end.
given_count=$#
if [ -n "${REDIS_PASSWORD_FILE:-}" ]; then
    [ -r "$REDIS_PASSWORD_FILE" ] || { say "REDIS_PASSWORD_FILE: cannot read $REDIS_PASSWORD_FILE"; exit 1; }
    REDIS_PASSWORD=$(cat "$REDIS_PASSWORD_FILE")
fi
[ -n "${REDIS_PORT_NUMBER:-}" ] && set -- "$@" --port "$REDIS_PORT_NUMBER"
[ -n "${REDIS_PASSWORD:-}" ] && set -- "$@" --requirepass "$REDIS_PASSWORD"
[ -n "${REDIS_AOF_ENABLED:-}" ] && set -- "$@" --appendonly "$REDIS_AOF_ENABLED"
if [ "${REDIS_RDB_POLICY_DISABLED:-no}" = "yes" ]; then
    set -- "$@" --save ""
elif [ -n "${REDIS_RDB_POLICY:-}" ]; then
    set -- "$@" --save "$(echo "$REDIS_RDB_POLICY" | tr '#' ' ')"
fi
[ -n "${REDIS_ACLFILE:-}" ] && set -- "$@" --aclfile "$REDIS_ACLFILE"
[ -n "${REDIS_IO_THREADS:-}" ] && set -- "$@" --io-threads "$REDIS_IO_THREADS"
if [ -n "${REDIS_DISABLE_COMMANDS:-}" ]; then
    for name in $(echo "$REDIS_DISABLE_COMMANDS" | tr ',' ' '); do
        set -- "$@" --rename-command "$name" ""
    done
fi
case "${REDIS_REPLICATION_MODE:-}" in
    ""|master) ;;
    replica|slave)
        [ -n "${REDIS_MASTER_HOST:-}" ] || { say "REDIS_REPLICATION_MODE=$REDIS_REPLICATION_MODE needs REDIS_MASTER_HOST"; exit 1; }
        set -- "$@" --replicaof "$REDIS_MASTER_HOST" "${REDIS_MASTER_PORT_NUMBER:-6379}"
        [ -n "${REDIS_MASTER_USER:-}" ] && set -- "$@" --masteruser "$REDIS_MASTER_USER"
        master_password=${REDIS_MASTER_PASSWORD:-${REDIS_PASSWORD:-}}
        [ -n "$master_password" ] && set -- "$@" --masterauth "$master_password"
        ;;
    *) say "REDIS_REPLICATION_MODE must be master or replica, not '$REDIS_REPLICATION_MODE'"; exit 1 ;;
esac
case "${REDIS_TLS_ENABLED:-no}" in
    no|false|0) ;;
    *) say "REDIS_TLS_ENABLED=$REDIS_TLS_ENABLED: dumpling has no TLS (terminate TLS in front of it)"; exit 1 ;;
esac
[ -n "${ALLOW_EMPTY_PASSWORD:-}" ] && say "ALLOW_EMPTY_PASSWORD has no effect: a password is required only when one is set"
set -f  # REDIS_ARGS / REDIS_EXTRA_FLAGS are split at white space, never expanded as file names
# shellcheck disable=SC2086
set -- "$@" ${REDIS_EXTRA_FLAGS:-} ${REDIS_ARGS:-}
set +f
while [ "$given_count" -gt 0 ]; do
    set -- "$@" "$1"
    shift
    given_count=$((given_count - 1))
done

args=" $* "
given() {
    case "$args" in *" --$1 "*) return 0 ;; esac
    [ -n "$conf" ] && [ -r "$conf" ] && grep -Eqi "^[[:space:]]*$1[[:space:]]" "$conf"
}
given bind || set -- "$@" --bind 0.0.0.0
given protected-mode || set -- "$@" --protected-mode no
[ -n "$conf" ] && set -- "$conf" "$@"
exec dumpling-server "$@"
