"""Every config.pbtxt of an exported repository, parsed strictly against a given Triton release's model_config.proto.

    python scripts/check_model_config_proto.py MODEL_CONFIG_PROTO REPO [REPO ...]

MODEL_CONFIG_PROTO: protobuf/model_config.proto of triton-inference-server/common at the release's branch (e.g.
`git show r26.07:protobuf/model_config.proto` in a clone). It is compiled here with grpcio-tools (in the lock), and
each config is parsed with protobuf's text_format, which refuses any field or enum value the release does not
know. Also reports the fields the repository's configs use that the local 2.51 build's proto (tritonclient's
model_config_pb2) and the release's proto define differently (a removed field or enum value). Exit 1 on a problem.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import tempfile
from pathlib import Path

from google.protobuf import text_format

proto, repos = Path(sys.argv[1]).resolve(), [Path(p) for p in sys.argv[2:]]
out = Path(tempfile.mkdtemp())
subprocess.run(
    [sys.executable, "-m", "grpc_tools.protoc", f"-I{proto.parent}", f"--python_out={out}", proto.name],
    check=True,
)
sys.path.insert(0, str(out))
release = importlib.import_module(proto.stem + "_pb2")
from tritonclient.grpc import model_config_pb2 as local  # noqa: E402


def fields(desc, prefix="") -> set[str]:
    """Every field path and enum value under a message descriptor (to compare two protos)."""
    seen = set()
    for f in desc.fields:
        seen.add(prefix + f.name)
        if f.enum_type is not None:
            seen |= {f"{prefix}{f.name}={v.name}" for v in f.enum_type.values}
        if f.message_type is not None and f.message_type is not desc and len(prefix) < 200:
            seen |= fields(f.message_type, prefix + f.name + ".")
    return seen


removed = sorted(fields(local.ModelConfig.DESCRIPTOR) - fields(release.ModelConfig.DESCRIPTOR))
problems, checked = [], 0
for repo in repos:
    for cfg in sorted(repo.glob("*/config.pbtxt")):
        checked += 1
        try:
            text_format.Parse(cfg.read_text(), release.ModelConfig())
        except text_format.ParseError as e:
            problems.append(f"{cfg}: {e}")
print(f"{checked} config.pbtxt parsed strictly against {proto}: {len(problems)} problem(s)")
print(f"fields or enum values of the local proto that the release's lacks: {removed or 'none'}")
for p in problems:
    print(p)
sys.exit(1 if problems else 0)
