"""A small reader of our Dockerfiles for the deployment checks (not a general parser)."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped.

    >>> instructions("FROM a:1\\n# c\\nRUN x \\\\\\n    && y\\nCMD [\\"z\\"]\\n")
    [('FROM', 'a:1'), ('RUN', 'x && y'), ('CMD', '["z"]')]
    """
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1].rstrip() + " "
            continue
        whole = (pending + line).strip()
        pending = ""
        if whole:
            keyword, _, args = whole.partition(" ")
            out.append((keyword.upper(), re.sub(r"\s+", " ", args.strip())))
    return out


def exec_form(args: str) -> list[str]:
    """``["a", "b"]`` or a shell form split like sh would."""
    if args.startswith("["):
        value = json.loads(args)
        assert isinstance(value, list)
        return [str(v) for v in value]
    return shlex.split(args)


@dataclass
class Dockerfile:
    path: Path
    bases: list[str] = field(default_factory=list)
    user: str | None = None
    healthcheck: list[str] | None = None
    cmd: list[str] | None = None
    entrypoint: list[str] | None = None
    copies: list[tuple[list[str], str]] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    last_stage_runs: list[str] = field(default_factory=list)
    """The RUN instructions of the image's own (last) stage, not of its build stages."""

    @classmethod
    def read(cls, path: Path) -> Dockerfile:
        found = cls(path)
        for keyword, args in instructions(path.read_text()):
            if keyword == "FROM":
                found.bases.append(args.split()[0])
                found.last_stage_runs = []
            elif keyword == "USER":
                found.user = args
            elif keyword == "HEALTHCHECK":
                found.healthcheck = (
                    exec_form(args.split(" CMD ", 1)[1]) if " CMD " in args else None
                )
                if args.startswith("CMD "):
                    found.healthcheck = exec_form(args[4:])
            elif keyword == "CMD":
                found.cmd = exec_form(args)
            elif keyword == "ENTRYPOINT":
                found.entrypoint = exec_form(args)
            elif keyword in ("COPY", "ADD") and "--from=" not in args:
                parts = [p for p in exec_form(args) if not p.startswith("--")]
                found.copies.append((parts[:-1], parts[-1]))
            elif keyword == "RUN":
                found.runs.append(args)
                found.last_stage_runs.append(args)
        return found

    def destination_of(self, path: str) -> tuple[str, str] | None:
        """(source in the context, destination) of the COPY that put ``path`` in the image."""
        for sources, dest in self.copies:
            for source in sources:
                name = Path(source).name
                if dest.endswith("/") and path == dest + name:
                    return source, path
                if path == dest:
                    return source, dest
        return None

    def requirement_files(self) -> list[str]:
        return [m for run in self.runs for m in re.findall(r"pip install [^&;]*?-r (\S+)", run)]
