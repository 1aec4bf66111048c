FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# The compliance report's PDF: Pango (WeasyPrint's text layout) and the Noto CJK fonts.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpango-1.0-0 libpangoft2-1.0-0 fonts-noto-cjk \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 1000 app \
    && mkdir -p /data/recordings /app \
    && chown app:app /data/recordings /app

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

COPY --chown=app:app . .
# Static files are collected at build time; the development defaults are enough for that.
RUN python manage.py collectstatic --noinput --verbosity 0

USER app
EXPOSE 8000
CMD ["gunicorn", "contactcenter.wsgi:application", "--bind", "0.0.0.0:8000"]
