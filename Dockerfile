# One image for web, worker and beat (docker-compose.yml picks the command).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml ./
COPY core ./core
COPY audit ./audit
COPY lines ./lines
COPY batches ./batches
COPY stations ./stations
COPY quality ./quality
COPY formation ./formation
COPY analytics ./analytics
COPY dashboard ./dashboard
COPY demo ./demo
COPY accounts ./accounts
COPY mes ./mes
RUN pip install --no-cache-dir .
COPY . .
RUN DJANGO_DEBUG=0 DJANGO_SECRET_KEY=build-only DATABASE_URL=postgresql://build@localhost/build \
    python manage.py collectstatic --noinput
RUN useradd --system --uid 1000 mes && mkdir -p /data/media && chown -R mes /data
USER mes
EXPOSE 8000
