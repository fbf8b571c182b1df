# One image for every Interlude process: api, jobs and the one-shot migrate.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY api ./api
COPY schema ./schema
COPY jobs ./jobs
COPY migrations ./migrations
RUN pip install . && useradd --system --uid 10001 interlude
USER interlude
EXPOSE 8000
CMD ["interlude", "serve", "--host", "0.0.0.0", "--port", "8000"]
