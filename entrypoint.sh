#!/bin/sh
# Container entrypoint (the counterpart of the original services/backend/entrypoint.sh).
#
#   web                  the API (the default): node dist/server.js
#   worker [flags]       background jobs:       node dist/worker.js
#   beat                 the periodic schedule: node dist/scheduler.js
#   manage <command>     a management command:  node dist/manage.js
#   anything else        run as given (e.g. sh)
#
# Switches, as the original read them:
#   RUN_MIGRATIONS=true  apply pending migrations before the process starts (safe when several
#                        containers start at once: the migrator takes a lock)
#   PRODUCTION=true      production settings when neither ENVIRONMENT nor DJANGO_SETTINGS_MODULE
#                        is set (read by the application itself)
#   USE_VAULT=true       the processes read their secrets from Vault with AppRole: VAULT_ADDR,
#                        VAULT_ROLE_ID and VAULT_SECRET_ID must be set. The original checked
#                        VAULT_TOKEN instead, which the client never used: it is not needed and
#                        not enough.
# NODE_MAX_OLD_SPACE_MB (112) caps the V8 heap of the processes, as npm run start:prod does.
set -eu

is_true() {
  case "$(printf '%s' "${1:-}" | tr '[:upper:]' '[:lower:]')" in
    true | 1 | yes | on) return 0 ;;
    *) return 1 ;;
  esac
}

node_run() {
  exec node --max-semi-space-size=8 --max-old-space-size="${NODE_MAX_OLD_SPACE_MB:-112}" "$@"
}

command="${1:-web}"
[ "$#" -gt 0 ] && shift

# EX_CONFIG (78), as the application exits for a configuration it cannot run with.
require_vault_approle() {
  missing=""
  for name in VAULT_ADDR VAULT_ROLE_ID VAULT_SECRET_ID; do
    eval "value=\${$name:-}"
    [ -n "$value" ] || missing="${missing:+$missing, }$name"
  done
  if [ -n "$missing" ]; then
    echo "USE_VAULT is on but $missing not set: the service logs in to Vault with AppRole (VAULT_TOKEN is neither needed nor enough)" >&2
    exit 78
  fi
}

case "$command" in
  web | worker | beat | manage)
    if is_true "${USE_VAULT:-}"; then
      require_vault_approle
    fi
    ;;
esac

case "$command" in
  web | worker | beat)
    if is_true "${RUN_MIGRATIONS:-}"; then
      node dist/manage.js migrate
    fi
    ;;
esac

case "$command" in
  web) node_run dist/server.js "$@" ;;
  worker) node_run dist/worker.js "$@" ;;
  beat) node_run dist/scheduler.js "$@" ;;
  manage) node_run dist/manage.js "$@" ;;
  *) exec "$command" "$@" ;;
esac
