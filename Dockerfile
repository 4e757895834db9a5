# One image, two entry points: the worker agent (`hepx agent run`) and the API (`hepx api run`).
# Build where a registry is reachable: docker build -t hepx .
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HEPX_HOME=/data
WORKDIR /app
COPY pyproject.toml README.md ./
COPY hepx ./hepx
COPY agent ./agent
COPY api ./api
RUN pip install --no-cache-dir '.[hep,containers]' && useradd --create-home --uid 1000 hepx \
    && mkdir /data && chown hepx /data
USER hepx
VOLUME /data
EXPOSE 8000
ENTRYPOINT ["hepx"]
CMD ["agent", "run"]
