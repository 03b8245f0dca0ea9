# idp: what `make run` does (init, demo data, the demo app on 5001, idp on 5000).
#   docker build -t idp . && docker run --rm -p 5000:5000 -p 5001:5001 idp
# then open http://localhost:5001 and press Log in. Set IDP_DEMO=0 in production (no demo data,
# no demo app). No Docker engine runs in our CI; keep it plain.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    IDP_INSTANCE=/var/lib/idp/instance \
    IDP_ISSUER=http://localhost:5000 \
    IDP_DEMO=1 \
    IDP_DEMO_APP_URL=http://localhost:5001

# bubblewrap sandboxes Actions. It needs unprivileged user namespaces, which stock Docker's
# seccomp profile blocks: run with `--security-opt seccomp=unconfined` (or a profile allowing
# clone/unshare of user namespaces); otherwise idp starts and refuses to run actions, saying why
# in its log and in /health/ready. xmlsec1 checks SAML connections' XML signatures.
RUN apt-get update && apt-get install -y --no-install-recommends bubblewrap xmlsec1 \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --home /var/lib/idp --create-home idp
WORKDIR /app
COPY pyproject.toml README.md ./
COPY idp ./idp
COPY plugins ./plugins
ENV IDP_MARKETPLACE_DIR=/app/plugins/actions
RUN pip install --no-cache-dir .

# actions/deps exists (owned by idp) so that a volume mounted there, shared by the instances of
# compose.yaml, starts out writable by idp
RUN mkdir -p /var/lib/idp/instance/actions/deps && chown -R idp:idp /var/lib/idp/instance
USER idp
VOLUME ["/var/lib/idp/instance"]
EXPOSE 5000 5001
# `idp init` is idempotent: it creates the instance on first start and migrates on upgrades;
# `idp demo` seeds the demo app, API and user once (the password is printed to the log the first
# time and kept in the volume's demo.json) and registers the demo app at IDP_DEMO_APP_URL;
# `idp demo-app` serves it on 5001 beside idp (publish both ports: the browser goes to each).
CMD ["sh", "-c", "idp --instance \"$IDP_INSTANCE\" init && if [ \"$IDP_DEMO\" = 1 ]; then idp --instance \"$IDP_INSTANCE\" demo && { idp --instance \"$IDP_INSTANCE\" demo-app --host 0.0.0.0 --port 5001 & }; fi && exec idp --instance \"$IDP_INSTANCE\" serve --host 0.0.0.0 --port 5000 --workers ${IDP_WORKERS:-2}"]
