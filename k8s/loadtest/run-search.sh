#!/bin/sh
# The master pod's command: `mtserve loadtest` as a Locust master, settings from the ConfigMap's literals
# (kustomization.yaml), reports in /reports; then the pod stays up LINGER_S seconds for `kubectl cp`.
set -u
set -- --url "$MULTITASK_URL" --per-task-url "${PER_TASK_URL:-$MULTITASK_URL}" \
    --expect-workers "$WORKERS" --master-bind 0.0.0.0:5557 \
    --slo-ms "$SLO_MS" --target-rps "$TARGET_RPS" --out /reports
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
echo "=== capacity.json"
cat /reports/capacity.json 2>/dev/null
echo "=== capacity.md"
cat /reports/capacity.md 2>/dev/null
echo "=== mtserve loadtest exited $status; /reports stays readable for ${LINGER_S:-0} s:"
echo "    kubectl cp -n ${POD_NAMESPACE:-mtserve} $(hostname):/reports ./reports"
sleep "${LINGER_S:-0}"
exit "$status"
