# idp: what `make run` does (init, demo data, serve). Set IDP_DEMO=0 in production.
# No Docker engine runs in our CI; keep it plain.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    IDP_INSTANCE=/var/lib/idp/instance \
    IDP_ISSUER=http://localhost:5000 \
    IDP_DEMO=1

# bubblewrap sandboxes Actions. It needs unprivileged user namespaces, which stock Docker's
# seccomp profile blocks: run with `--security-opt seccomp=unconfined` (or a profile allowing
# clone/unshare of user namespaces); otherwise idp starts and refuses to run actions, saying why
# in its log and in /health/ready.
RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --home /var/lib/idp --create-home idp
WORKDIR /app
COPY pyproject.toml README.md ./
COPY idp ./idp
COPY plugins ./plugins
ENV IDP_MARKETPLACE_DIR=/app/plugins/actions
RUN pip install --no-cache-dir .

RUN mkdir -p /var/lib/idp/instance && chown idp:idp /var/lib/idp/instance
USER idp
VOLUME ["/var/lib/idp/instance"]
EXPOSE 5000
# `idp init` is idempotent: it creates the instance on first start and migrates on upgrades;
# `idp demo` seeds the demo app, API and user once and prints them to the log.
CMD ["sh", "-c", "idp --instance \"$IDP_INSTANCE\" init && if [ \"$IDP_DEMO\" = 1 ]; then idp --instance \"$IDP_INSTANCE\" demo; fi && exec idp --instance \"$IDP_INSTANCE\" serve --host 0.0.0.0 --port 5000 --workers ${IDP_WORKERS:-2}"]
