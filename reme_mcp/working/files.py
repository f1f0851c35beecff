"""The working-memory directory: the only place these flows read or write.

Every path a caller names (`store_dir`, `chat_id`, `file`, and the `tool_call_id`s that
end up in file names) is checked before use: relative, no '..', plain characters, and
after resolving symlinks still inside the directory. Files are created exclusively
(O_EXCL), so a reused chat id adds files and never replaces one.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from reme_mcp.errors import InvalidInput, NotFound

DIRECTORY = "working_memory"

_PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def split_lines(text: str) -> list[str]:
    """Lines with their '\\n' kept, split on '\\n' only, so joining them gives `text` back exactly."""
    parts = text.split("\n")
    lines = [part + "\n" for part in parts[:-1]]
    if parts[-1]:
        lines.append(parts[-1])
    return lines


def count_lines(text: str) -> int:
    """len(split_lines(text)), without building the list."""
    return text.count("\n") + (1 if text and not text.endswith("\n") else 0)


def file_stem(identifier: str) -> str:
    """A tool_call_id as part of a file name; ids that try to name a path are refused."""
    if "/" in identifier or "\\" in identifier or ".." in identifier or "\x00" in identifier:
        raise InvalidInput(
            f"tool_call_id {identifier!r} looks like a path; tool call ids may not contain '/', '\\' or '..'."
        )
    return _UNSAFE.sub("_", identifier)[:64] or "result"


def _keep(text: str) -> tuple[str, int]:
    return text, 0


class WorkingFiles:
    def __init__(self, root: Path, redact: Callable[[str], tuple[str, int]] = _keep):
        self.root = root
        self.redact = redact  # applied to what is offloaded (reme_mcp/privacy)

    def _real_root(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        return Path(os.path.realpath(self.root))

    def _relative(self, value: str, what: str) -> list[str]:
        if value.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", value):
            raise InvalidInput(f"{what} {value!r} is absolute; give a path relative to the working-memory directory.")
        parts = [part for part in value.replace("\\", "/").split("/") if part]
        bad = [part for part in parts if not _PART.fullmatch(part) or ".." in part]
        if bad or not parts:
            raise InvalidInput(
                f"{what} {value!r} is not allowed: use names of letters, digits, '.', '_' and '-' "
                "separated by '/', with no '..'."
            )
        return parts

    def _inside(self, path: Path, what: str, value: str) -> Path:
        real = Path(os.path.realpath(path))
        if not real.is_relative_to(self._real_root()):
            raise InvalidInput(f"{what} {value!r} leads outside the working-memory directory; refused.")
        return real

    def directory(self, store_dir: str | None, chat_id: str | None = None) -> Path:
        """`store_dir/chat_id` under the root (not created)."""
        path = self.root
        if store_dir:
            path = path.joinpath(*self._relative(store_dir, "store_dir"))
        if chat_id:
            path = path.joinpath(*self._relative(chat_id, "chat_id"))
        return self._inside(path, "store_dir/chat_id", f"{store_dir or ''}/{chat_id or ''}")

    def create(self, directory: Path, stem: str, text: str) -> Path:
        """Write `text` to a new file `NNNN-stem.txt` in `directory`; never replaces a file."""
        directory.mkdir(parents=True, exist_ok=True)
        directory = self._inside(directory, "directory", str(directory))
        data = text.encode("utf-8", errors="surrogatepass")
        number = sum(1 for _ in directory.iterdir()) + 1
        while True:
            path = directory / f"{number:04d}-{stem}.txt"
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
            except FileExistsError:
                number += 1
                continue
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            return path

    def resolve(self, file: str) -> Path:
        """An existing file named relative to the root."""
        path = self._inside(self.root.joinpath(*self._relative(file, "file")), "file", file)
        if not path.is_file():
            raise NotFound(f"No working-memory file {file!r}; use the names summary_working_memory or grep returned.")
        return path

    def files(self, directory: Path) -> Iterator[Path]:
        """Every file under `directory`, in name order, skipping anything whose real path is outside."""
        root = self._real_root()
        for dirpath, dirnames, filenames in os.walk(directory):
            dirnames.sort()
            for name in sorted(filenames):
                real = Path(os.path.realpath(os.path.join(dirpath, name)))
                if real.is_relative_to(root) and real.is_file():
                    yield Path(dirpath) / name

    def name(self, path: Path) -> str:
        """How callers refer to a file: its path relative to the root, with '/'."""
        return Path(os.path.realpath(path)).relative_to(self._real_root()).as_posix()

    def read(self, path: Path) -> str:
        return path.read_bytes().decode("utf-8", errors="replace")
