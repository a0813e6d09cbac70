# syntax=docker/dockerfile:1
# Builder: compile the C extensions (dumpling's own accelerators, python-lzf, and any
# dependency without a wheel) into wheels, so the runtime image needs no compiler.
FROM python:3.11 AS builder
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY dumpling ./dumpling
# The accelerators are optional for `pip install`, not for the image: fail if one did not build.
# python-lzf (the `lzf` extra) is optional too, and wanted here: C LZF for RDB/DUMP strings.
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[lzf]' \
    && for ext in _fastpath _fpconv _hllgeo _untrack _collections _luabridge _speedups _listpack _snapshot _bigops _elementlist _keytable _zsetindex; do \
        python -m zipfile -l /wheels/dumpling-*.whl | grep -q "$ext\..*\.so" || { echo "missing $ext"; exit 1; }; \
    done \
    && ls /wheels/python_lzf-*.whl

# Runtime: slim Python, non-root user, only the wheels.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 dumpling \
    && mkdir /data && chown dumpling:dumpling /data
COPY --from=builder /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels
COPY docker/entrypoint.sh /usr/local/bin/docker-entrypoint.sh
COPY docker/healthcheck.py /usr/local/lib/dumpling-healthcheck.py
# A one-shot redis-cli for probes run inside the container (testcontainers' RedisContainer waits
# on `redis-cli ping`); the real one is not in the image.
COPY docker/redis-cli.py /usr/local/bin/redis-cli
USER dumpling
# Persistence (dump.rdb, appendonlydir) goes to the working directory: mount a volume here.
WORKDIR /data
VOLUME /data
EXPOSE 6379
# PINGs where the server's own arguments/config file say it listens (port, bind, unixsocket,
# requirepass), so `docker run dumpling --port 7000 --requirepass s` stays healthy.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "/usr/local/lib/dumpling-healthcheck.py"]
# As the official redis image: options or a .conf file alone, or `redis-server ...`
# (testcontainers' RedisContainer with a password) start the server on every interface.
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["dumpling-server"]
