# The etl4all image: one image, three stage workers (see docker-compose.yml).
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml setup.cfg README.md ./
COPY etl4all ./etl4all
COPY sql ./sql
RUN pip install '.[services]' && useradd --create-home etl4all
USER etl4all
WORKDIR /home/etl4all
ENTRYPOINT ["etl4all"]
CMD ["--help"]
