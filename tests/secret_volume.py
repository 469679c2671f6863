"""A tokens file mounted the way the kubelet mounts a Kubernetes Secret, for the authentication tests."""

from __future__ import annotations

import os
from pathlib import Path


class SecretVolume:
    """A directory laid out the way the kubelet mounts a Secret (atomic writer):

    ``tokens -> ..data/tokens``, ``..data -> ..<timestamp>``, the files inside the timestamped
    directory; an update writes a new timestamped directory, points a temporary symlink at it,
    renames that over ``..data`` (atomic) and removes the old directory.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.generation = 0
        self.current: Path | None = None

    def publish(self, content: str) -> None:
        self.generation += 1
        target = self.root / f"..2024_05_01_12_00_{self.generation:02d}.{123456789 + self.generation}"
        target.mkdir()
        (target / "tokens").write_text(content)
        temporary = self.root / "..data_tmp"
        temporary.symlink_to(target.name)
        os.rename(temporary, self.root / "..data")
        if not (self.root / "tokens").is_symlink():
            (self.root / "tokens").symlink_to("..data/tokens")
        if self.current is not None:
            (self.current / "tokens").unlink()
            self.current.rmdir()
        self.current = target

    @property
    def path(self) -> Path:
        return self.root / "tokens"
