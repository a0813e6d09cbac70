#!/bin/sh
# The image's entrypoint, shaped like the official redis image's so dumpling drops in where
# that image is used:
#   docker run dumpling                        -> the server, reachable from outside the container
#   docker run dumpling --port 7000            -> options (or a *.conf file first) go to the server
#   docker run dumpling redis-server --requirepass s   (what testcontainers' RedisContainer runs)
#   docker run dumpling dumpling-server ...    -> the server with those arguments
#   docker run dumpling sh                     -> anything else runs as given
# As the official image (its Redis is built with protected mode off and listens everywhere),
# the server listens on every interface, protected mode off, unless the arguments or the
# config file set bind / protected-mode themselves.
set -e
case "$1" in
    redis-server|dumpling-server) shift ;;
    ""|-*|*.conf) ;;
    *) exec "$@" ;;
esac
conf=""
case "$1" in *.conf) conf=$1 ;; esac
args=" $* "
given() {
    case "$args" in *" --$1 "*) return 0 ;; esac
    [ -n "$conf" ] && [ -r "$conf" ] && grep -Eqi "^[[:space:]]*$1[[:space:]]" "$conf"
}
given bind || set -- "$@" --bind 0.0.0.0
given protected-mode || set -- "$@" --protected-mode no
exec dumpling-server "$@"
