# ai-router image: the router (and, for the `sim` profile, the backend simulator).
# Two stages: build a wheel from the source, then install only that wheel, so the image
# carries what `pip install .` ships (package data included) and nothing of the work tree.
# The base image is pinned to a patch release; bump it deliberately.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md server.py ./
COPY core ./core
COPY graph ./graph
COPY nodes ./nodes
COPY prompts ./prompts
COPY tools ./tools
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="ai-router" \
      org.opencontainers.image.description="Self-hosted OpenAI-compatible LLM router"
# Every setting is read from the environment (compose passes .env); these defaults make
# the container listen on all interfaces and never start the embedded simulator by itself.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    SIMULATOR=off \
    LOCAL_CLASSIFIER_MODEL_PATH=/app/models/router_classifier/model.json
# The local route classifier (`make train-router` writes it) is data, not part of the wheel.
COPY models/router_classifier/model.json /app/models/router_classifier/model.json
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl \
    && rm -rf /wheels \
    && useradd --create-home --uid 10001 --user-group router \
    && mkdir -p /data \
    && chown router:router /data
# Numeric, so that Kubernetes-style "run as non-root" checks can verify it without /etc/passwd.
USER 10001:10001
WORKDIR /data
EXPOSE 8000
# The router's /health answers 200 while the primary model is reachable.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-m", "tools.healthcheck", "--local", "--quiet"]
CMD ["python", "-m", "tools.launch"]
