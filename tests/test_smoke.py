"""The server starts, answers PING, and basic differential plumbing works."""


def test_ping_and_echo(pairs):
    pairs.same("PING")
    pairs.same("PING", "hello")
    pairs.same("ECHO", "x")


def test_unknown_command(pairs):
    pairs.same("FOO", "bar", "baz")
    pairs.same("FOO")
