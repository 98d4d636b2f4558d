#!/bin/sh
# The master pod's command: `mtserve loadtest` as a Locust master, settings from the ConfigMap's literals
# (kustomization.yaml), reports in $REPORTS (/reports). The reports then leave the pod in its log: the last block
# is a base64 tar.gz of $REPORTS between two marker lines, which fetch-reports.sh extracts with `kubectl logs`
# (no copying out of a pod kept running). The pod exits with mtserve loadtest's status (docs/exit-codes.md).
set -u
REPORTS=${REPORTS:-/reports}
set -- --url "$MULTITASK_URL" --per-task-url "${PER_TASK_URL:-$MULTITASK_URL}" \
    --expect-workers "$WORKERS" --master-bind 0.0.0.0:5557 \
    --slo-ms "$SLO_MS" --target-rps "$TARGET_RPS" --out "$REPORTS"
if [ -n "${MULTITASK_AUTHORITY:-}" ]; then set -- "$@" --authority "$MULTITASK_AUTHORITY"; fi
if [ -n "${PER_TASK_AUTHORITY:-}" ]; then set -- "$@" --per-task-authority "$PER_TASK_AUTHORITY"; fi
if [ "${TLS:-false}" = "true" ]; then
    set -- "$@" --tls
    if [ -f /etc/mtserve-tls/ca.crt ]; then set -- "$@" --root-cert /etc/mtserve-tls/ca.crt; fi
    if [ -f /etc/mtserve-tls/tls.crt ]; then
        set -- "$@" --client-cert /etc/mtserve-tls/tls.crt --client-key /etc/mtserve-tls/tls.key
    fi
fi
# EXTRA_ARGS is a list of options: split on spaces on purpose
# shellcheck disable=SC2086
mtserve loadtest "$@" ${EXTRA_ARGS:-}
status=$?
echo "=== capacity.md"
cat "$REPORTS/capacity.md" 2>/dev/null
echo "=== mtserve loadtest exited $status (docs/exit-codes.md); the reports follow: k8s/loadtest/fetch-reports.sh"
echo "=== mtserve-loadtest reports begin"
tar -czf - -C "$REPORTS" . | base64
echo "=== mtserve-loadtest reports end"
exit "$status"
