"""The committed Python stubs are exactly what `make proto` generates from the .proto."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STUBS = ("relayrl_pb2.py", "relayrl_pb2.pyi", "relayrl_pb2_grpc.py")


def test_stubs_match_the_proto(tmp_path):
    shutil.copytree(ROOT / "proto", tmp_path / "proto")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-Iproto",
            "--python_out=.",
            "--pyi_out=.",
            "--grpc_python_out=.",
            "proto/relayrl/v1/relayrl.proto",
        ],
        cwd=tmp_path,
        check=True,
    )
    for name in STUBS:
        generated = (tmp_path / "relayrl" / "v1" / name).read_text()
        committed = (ROOT / "relayrl" / "v1" / name).read_text()
        assert generated == committed, f"relayrl/v1/{name} is stale: run `make proto`"
