# The fleetgate image: every service of docker-compose.yml runs a `fleetgate ...` command from it.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY services ./services
COPY simulator ./simulator
COPY fleetgate ./fleetgate
RUN pip install . && useradd --create-home fleetgate && mkdir -p /data /reports && chown fleetgate /data /reports
USER fleetgate
CMD ["fleetgate", "--help"]
