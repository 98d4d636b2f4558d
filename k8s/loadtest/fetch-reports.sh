#!/bin/sh
# The load test's reports out of the master Job's log (run-search.sh prints them as a base64 tar.gz between two
# marker lines): no copying out of a pod kept running. The log lasts as long as the Job (ttlSecondsAfterFinished).
#   k8s/loadtest/fetch-reports.sh [NAMESPACE] [OUT_DIR]      (defaults: mtserve, ./reports)
set -eu
ns=${1:-mtserve}
out=${2:-reports}
mkdir -p "$out"
kubectl logs -n "$ns" job/mtserve-loadtest-master \
    | sed -n '/^=== mtserve-loadtest reports begin$/,/^=== mtserve-loadtest reports end$/p' \
    | sed '1d;$d' | base64 -d | tar -xzf - -C "$out"
ls -l "$out"
