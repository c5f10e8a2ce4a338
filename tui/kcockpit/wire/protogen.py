"""Generate the Python stubs in kcockpit/wire/pb from the .proto files in protos/.

Run `python -m kcockpit.wire.protogen` from the repository root after editing protos/.
protoc writes imports as `from flow import flow_pb2`; we rewrite them to absolute
imports inside this package so that no generic top-level `flow` package is needed.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

PROTO_PACKAGES = ("flow", "relay", "observer", "peer")
REPO_ROOT = Path(__file__).resolve().parents[3]
PROTOS_DIR = REPO_ROOT / "protos"
STUBS_DIR = Path(__file__).resolve().parent / "pb"
_IMPORT_RE = re.compile(rf"^from ({'|'.join(PROTO_PACKAGES)}) import ", re.MULTILINE)


def generate(out_dir: Path, protos_dir: Path = PROTOS_DIR) -> list[Path]:
    """Write stubs for every proto package into out_dir; returns the files written."""
    import grpc_tools
    from grpc_tools import protoc

    well_known = Path(grpc_tools.__file__).parent / "_proto"
    sources = sorted(str(p.relative_to(protos_dir)) for p in protos_dir.glob("*/*.proto"))
    with tempfile.TemporaryDirectory() as raw:
        args = [
            "protoc",
            f"-I{protos_dir}",
            f"-I{well_known}",
            f"--python_out={raw}",
            f"--pyi_out={raw}",
            f"--grpc_python_out={raw}",
            *sources,
        ]
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed for {sources}")
        written = []
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / "__init__.py").write_text('"""Generated Hubble stubs; see kcockpit.wire.protogen."""\n')
        for path in sorted(Path(raw).rglob("*.py*")):
            rel = path.relative_to(raw)
            target = out_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            text = _IMPORT_RE.sub(r"from kcockpit.wire.pb.\1 import ", path.read_text())
            target.write_text(text)
            written.append(target)
        for package in PROTO_PACKAGES:
            init = out_dir / package / "__init__.py"
            init.write_text("")
            written.append(init)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=STUBS_DIR, help="output folder (default: the package's pb/)")
    args = parser.parse_args(argv)
    files = generate(args.out)
    print(f"wrote {len(files)} files to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
