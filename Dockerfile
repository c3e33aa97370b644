# One image for the API and the workers: `condense serve` or `condense worker --queues gpu`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CONDENSE_DATA_DIR=/data

WORKDIR /app
RUN useradd --create-home --uid 10001 condense \
    && mkdir -p /data && chown condense:condense /data

# Dependencies first (the slow layer, torch included), so a code change does not reinstall them.
COPY pyproject.toml ./
RUN mkdir -p engine app worker cli && touch engine/__init__.py app/__init__.py worker/__init__.py cli/__init__.py \
    && pip install . && pip uninstall -y condense

COPY alembic.ini ./
COPY migrations ./migrations
COPY engine ./engine
COPY app ./app
COPY worker ./worker
COPY cli ./cli
# Editable, so the migrations are found beside the code and `condense` is on PATH.
RUN pip install --no-deps -e .

USER condense
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)" || exit 1
CMD ["condense", "serve", "--host", "0.0.0.0", "--port", "8000"]
