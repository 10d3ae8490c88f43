"""Generating the Python stubs of the streamgate API from the repository's proto/ directory
(the command is streamgate_client.generate).

The stubs go to ``streamgate_client/_gen/`` (gitignored), as the package ``streamgate.v1``
that protoc names after the proto paths. A stamp file holds a hash of the protos, so that
importing ``streamgate_client`` regenerates them by itself when they are missing or stale.
The google/protobuf well-known types come from the copy bundled with grpcio-tools.
Set STREAMGATE_PROTO_DIR to use protos from elsewhere.
"""

import hashlib
import os
import pathlib
import shutil
import tempfile

PACKAGE_DIR = pathlib.Path(__file__).resolve().parent
GEN_DIR = PACKAGE_DIR / "_gen"
STAMP = GEN_DIR / "proto.sha256"
# examples/python/streamgate_client -> the repository root
DEFAULT_PROTO_DIR = PACKAGE_DIR.parents[2] / "proto"


def proto_dir() -> pathlib.Path:
    """The directory holding streamgate/v1/*.proto."""
    return pathlib.Path(os.environ.get("STREAMGATE_PROTO_DIR", DEFAULT_PROTO_DIR))


def _protos(root: pathlib.Path) -> list:
    protos = sorted((root / "streamgate" / "v1").glob("*.proto"))
    if not protos:
        raise RuntimeError(f"no streamgate/v1/*.proto under {root} (set STREAMGATE_PROTO_DIR)")
    return protos


def _fingerprint(root: pathlib.Path) -> str:
    digest = hashlib.sha256()
    for proto in _protos(root):
        digest.update(proto.relative_to(root).as_posix().encode() + b"\0")
        digest.update(proto.read_bytes() + b"\0")
    return digest.hexdigest()


def is_current() -> bool:
    """Whether the stubs exist and match the protos."""
    try:
        return STAMP.read_text().strip() == _fingerprint(proto_dir())
    except FileNotFoundError:
        return False


def generate(force: bool = False) -> pathlib.Path:
    """Generates the stubs into GEN_DIR unless they are current; returns GEN_DIR.

    The stubs are written to a temporary directory first and moved into place, so a
    concurrent import never sees half of them.
    """
    if not force and is_current():
        return GEN_DIR
    from grpc_tools import protoc  # imported here: only needed to generate

    root = proto_dir()
    well_known = pathlib.Path(protoc.__file__).resolve().parent / "_proto"
    staging = pathlib.Path(tempfile.mkdtemp(prefix="_gen-", dir=PACKAGE_DIR))
    try:
        args = ["protoc", f"-I{root}", f"-I{well_known}", f"--python_out={staging}",
                f"--pyi_out={staging}", f"--grpc_python_out={staging}"]
        status = protoc.main(args + [str(p) for p in _protos(root)])
        if status != 0:
            raise RuntimeError(f"protoc failed (status {status}) on {root}")
        (staging / "proto.sha256").write_text(_fingerprint(root) + "\n")
        old = None
        if GEN_DIR.exists():
            old = pathlib.Path(tempfile.mkdtemp(prefix="_old-", dir=PACKAGE_DIR))
            GEN_DIR.rename(old / "_gen")
        try:
            staging.rename(GEN_DIR)
        except OSError:
            if not is_current():  # else another process has just put the same stubs in place
                raise
            shutil.rmtree(staging, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return GEN_DIR

