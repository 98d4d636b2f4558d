#!/usr/bin/env bash
# Installs Triton's perf_analyzer into .tools/perf_analyzer/ (make perf-analyzer): the binary from the
# tritonclient 2.41.0 wheel, libcudart.so.12 from the CUDA runtime wheel (scripts/perf_analyzer.txt, by hash),
# and Debian's libb64-0d (apt-get, as root). No GPU needed. Prints the path of the wrapper that runs it.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=.tools/perf_analyzer
PYTHON=${PYTHON:-python3}
if ! ldconfig -p | grep -q 'libb64\.so\.0d'; then
  if [ "$(id -u)" != 0 ]; then
    echo "perf_analyzer needs Debian's libb64-0d: run 'apt-get install libb64-0d' as root" >&2
    exit 1
  fi
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libb64-0d > /dev/null
fi
if [ ! -x "$DEST/perf_analyzer" ] || [ scripts/perf_analyzer.txt -nt "$DEST/perf_analyzer" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  # the wheels only, for this platform, checked against the hashes (never installed into an environment)
  "$PYTHON" -m pip download -q --no-deps --require-hashes --only-binary :all: \
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --python-version 3.11 \
    -r scripts/perf_analyzer.txt -d "$tmp/wheels"
  mkdir -p "$tmp/out/lib"
  "$PYTHON" - "$tmp" <<'PY'
import sys, zipfile, glob, os
tmp = sys.argv[1]
for whl in glob.glob(os.path.join(tmp, "wheels", "*.whl")):
    with zipfile.ZipFile(whl) as z:
        for name in z.namelist():
            if name.endswith("data/bin/perf_analyzer"):
                dest = os.path.join(tmp, "out", "perf_analyzer.bin")
            elif name.endswith("lib/libcudart.so.12"):
                dest = os.path.join(tmp, "out", "lib", "libcudart.so.12")
            else:
                continue
            with z.open(name) as src, open(dest, "wb") as out:
                out.write(src.read())
            os.chmod(dest, 0o755)
PY
  cat > "$tmp/out/perf_analyzer" <<'SH'
#!/bin/sh
# perf_analyzer with the libcudart.so.12 that came with it (scripts/install_perf_analyzer.sh)
here=$(dirname "$(readlink -f "$0")")
LD_LIBRARY_PATH="$here/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$here/perf_analyzer.bin" "$@"
SH
  chmod +x "$tmp/out/perf_analyzer"
  test -x "$tmp/out/perf_analyzer.bin" && test -f "$tmp/out/lib/libcudart.so.12"
  rm -rf "$DEST" && mkdir -p "$(dirname "$DEST")" && mv "$tmp/out" "$DEST"
fi
"$DEST/perf_analyzer" --version > /dev/null 2>&1 || "$DEST/perf_analyzer" --help > /dev/null 2>&1 || {
  echo "$DEST/perf_analyzer does not run:" >&2
  "$DEST/perf_analyzer" --help 2>&1 | tail -3 >&2
  exit 1
}
echo "$DEST/perf_analyzer"
