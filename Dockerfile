# idp: the same as `make run` minus the demo data. No Docker engine runs in our CI; keep it plain.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    IDP_INSTANCE=/var/lib/idp/instance

RUN useradd --system --home /var/lib/idp --create-home idp
WORKDIR /app
COPY pyproject.toml README.md ./
COPY idp ./idp
RUN pip install --no-cache-dir .

USER idp
VOLUME ["/var/lib/idp/instance"]
EXPOSE 5000
# `idp init` is idempotent: it creates the instance on first start and migrates on upgrades.
CMD ["sh", "-c", "idp --instance \"$IDP_INSTANCE\" init && exec idp --instance \"$IDP_INSTANCE\" serve --host 0.0.0.0 --port 5000 --workers ${IDP_WORKERS:-2}"]
