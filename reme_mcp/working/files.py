"""The working-memory directory: the only place these flows read or write.

Every path a caller names (`store_dir`, `chat_id`, `file`, and the `tool_call_id`s that
end up in file names) is checked before use: relative, no '..', plain characters, and
after resolving symlinks still inside the directory. Files appear whole and
are never replaced, so a reused chat id adds files.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from reme_mcp.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)

DIRECTORY = "working"  # under store_dir; each workspace has its own folder in it
LEGACY_DIRECTORY = "working_memory"  # where every chat lived before working memory had workspaces
TEMPORARY = ".tmp-"  # prefix of a file still being written

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


def adopt_legacy(store_dir: Path, default_workspace: str) -> None:
    """Files offloaded before working memory had workspaces (store_dir/working_memory) belong to the
    default workspace: move them there, so their names keep working. Safe when several processes start."""
    legacy = store_dir / LEGACY_DIRECTORY
    if not legacy.is_dir():
        return
    target = store_dir / DIRECTORY / default_workspace
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.rename(legacy, target)
    except FileNotFoundError:
        return  # another process moved it first
    except OSError:  # the workspace has files of its own already: move entry by entry
        for entry in legacy.iterdir():
            if (target / entry.name).exists():
                log.warning("working memory: %s exists in both %s and %s; left in place", entry.name, legacy, target)
            else:
                os.rename(entry, target / entry.name)
    log.info("working memory: moved %s to %s (workspace %s)", legacy, target, default_workspace)


class WorkingFiles:
    """The working-memory files under `root`; `workspace(...)` gives one workspace's own view, which
    can neither name nor list another's files."""

    def __init__(self, root: Path, redact: Callable[[str], tuple[str, int]] = _keep, workspace_id: str | None = None):
        self.root = root
        self.redact = redact  # applied to what is offloaded (reme_mcp/privacy)
        self.workspace_id = workspace_id

    def workspace(self, workspace_id: str) -> "WorkingFiles":
        return WorkingFiles(self.root / workspace_id, self.redact, workspace_id)

    def call_arguments(self, name: str) -> str:
        """How an agent asks for the file `name` again (read/grep arguments)."""
        return f'workspace_id="{self.workspace_id}", file="{name}"' if self.workspace_id else f'file="{name}"'

    def _real_root(self) -> Path:  # not created here: a read or a refused call leaves no folder behind
        real = Path(os.path.realpath(self.root))
        if self.workspace_id and real != Path(os.path.realpath(self.root.parent)) / self.workspace_id:
            raise InvalidInput(
                f"The working-memory folder of workspace {self.workspace_id!r} leads outside the store; refused."
            )
        return real

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
        # Written whole under a temporary name first, then linked in under its own name (which fails
        # rather than replaces): a crash mid-write leaves a `.tmp-` file, never a torn offload.
        fd, temporary = tempfile.mkstemp(prefix=TEMPORARY, dir=directory)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            number = sum(1 for p in directory.iterdir() if not p.name.startswith(TEMPORARY)) + 1
            while True:
                path = directory / f"{number:04d}-{stem}.txt"
                try:
                    os.link(temporary, path)
                    return path
                except FileExistsError:
                    number += 1
        finally:
            os.unlink(temporary)

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
                if name.startswith(TEMPORARY):
                    continue
                real = Path(os.path.realpath(os.path.join(dirpath, name)))
                if real.is_relative_to(root) and real.is_file():
                    yield Path(dirpath) / name

    def name(self, path: Path) -> str:
        """How callers refer to a file: its path relative to the root, with '/'."""
        return Path(os.path.realpath(path)).relative_to(self._real_root()).as_posix()

    def read(self, path: Path) -> str:
        return path.read_bytes().decode("utf-8", errors="replace")
