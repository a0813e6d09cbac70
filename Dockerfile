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
    && for ext in _fastpath _fpconv _speedups _listpack _snapshot; do \
        python -m zipfile -l /wheels/dumpling-*.whl | grep -q "$ext\..*\.so" || { echo "missing $ext"; exit 1; }; \
    done \
    && ls /wheels/python_lzf-*.whl

# Runtime: slim Python, non-root user, only the wheels.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 dumpling
COPY --from=builder /wheels /wheels
RUN pip install --no-cache-dir --no-index /wheels/*.whl && rm -rf /wheels
USER dumpling
WORKDIR /home/dumpling
EXPOSE 6379
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD python -c "import socket; s = socket.create_connection(('127.0.0.1', 6379), 2); s.sendall(b'PING\r\n'); assert s.recv(7) == b'+PONG\r\n'"
ENTRYPOINT ["dumpling-server"]
CMD ["--bind", "0.0.0.0"]
