#!/bin/sh
# The alertmanager service's entry point: put ALERT_WEBHOOK_URL into the config, then run
# Alertmanager on it. sed's special characters in the URL (& \ #) are escaped first.
set -eu
: "${ALERT_WEBHOOK_URL:?set ALERT_WEBHOOK_URL, where alerts are posted}"
url=$(printf '%s' "$ALERT_WEBHOOK_URL" | sed 's/[&#\\]/\\&/g')
sed "s#ALERTMANAGER_URL_PLACEHOLDER#${url}#" "${CONFIG_IN:-/etc/alertmanager/loket/alertmanager.yml}" > "${CONFIG_OUT:-/tmp/alertmanager.yml}"
[ -n "${RENDER_ONLY:-}" ] && exit 0
exec /bin/alertmanager --config.file="${CONFIG_OUT:-/tmp/alertmanager.yml}" --storage.path=/alertmanager "$@"
