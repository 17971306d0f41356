FROM python:3.11-slim
WORKDIR /srv/labelloop
COPY pyproject.toml README.md alembic.ini ./
COPY app ./app
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
RUN pip install --no-cache-dir -e .
ENV LABELLOOP_DATA_DIR=/var/lib/labelloop
EXPOSE 8000
CMD ["labelloop", "serve", "--host", "0.0.0.0", "--port", "8000", "--no-worker"]
