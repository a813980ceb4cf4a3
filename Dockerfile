# PLM-EDC application image: web (gunicorn), Celery worker and Celery beat run from it.
# Build and run it through docker-compose.yml (see the README, "Deployment").
#
# Static files are collected when the web container starts, not here: production settings
# refuse to load without the real SECRET_KEY, a postgres:// DATABASE_URL and REDIS_URL, and
# none of these belong in an image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=config.settings.production

# An unprivileged user; the code stays owned by root, so the app cannot rewrite itself.
RUN groupadd --system --gid 10001 edc \
    && useradd --system --uid 10001 --gid edc --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin edc

WORKDIR /app

# Dependencies first, so code changes reuse this layer. psycopg2-binary brings its own libpq.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY . .
# var/ holds what the app writes: collected static files and the beat schedule.
RUN mkdir -p /app/var/staticfiles && chown -R edc:edc /app/var

USER edc
EXPOSE 8000

# The same start-up as the compose web service (a test keeps the two identical).
CMD ["sh", "-c", "python manage.py migrate --noinput && python manage.py collectstatic --noinput -v0 && exec gunicorn config.wsgi:application --bind 0.0.0.0:8000 --timeout 60 --access-logfile - --error-logfile -"]
