"""The widget package: the files under ``crm/widget/`` with PUBLIC_URL baked in.

``build_widget`` zips them for upload to amoCRM (manifest.json at the root, docs/amocrm-api.md §9);
the sandbox's widget host page serves the same rendered ``script.js``, so both run one source.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from django.conf import settings

WIDGET_DIR = Path(__file__).resolve().parent / "widget"
PLACEHOLDER = "__BEETEL_PUBLIC_URL__"
_TEXT_SUFFIXES = {".js", ".json", ".twig", ".css", ".html"}
_PACKAGED = ("manifest.json", "script.js", "i18n", "images", "templates", "css", "js")
MAX_IMAGE_BYTES = 300 * 1024


def widget_file(relative: str) -> bytes:
    """One file of the package, rendered (text files get PUBLIC_URL substituted)."""
    path = (WIDGET_DIR / relative).resolve()
    if WIDGET_DIR not in path.parents or not path.is_file():
        raise FileNotFoundError(relative)
    data = path.read_bytes()
    if path.suffix in _TEXT_SUFFIXES:
        data = data.replace(PLACEHOLDER.encode(), settings.PUBLIC_URL.encode())
    return data


def widget_files() -> dict[str, bytes]:
    """Archive name → rendered content, for every packaged file."""
    files: dict[str, bytes] = {}
    for top in _PACKAGED:
        entry = WIDGET_DIR / top
        paths = sorted(p for p in entry.rglob("*") if p.is_file()) if entry.is_dir() else [entry]
        for path in paths:
            if path.is_file() and not path.name.startswith("."):
                name = path.relative_to(WIDGET_DIR).as_posix()
                files[name] = widget_file(name)
    return files


def widget_zip_build(*, output_dir: Path) -> Path:
    """Write ``beetel-widget-<version>.zip`` into ``output_dir``; returns its path."""
    files = widget_files()
    version = json.loads(files["manifest.json"])["widget"]["version"]
    output_dir.mkdir(parents=True, exist_ok=True)
    target = output_dir / f"beetel-widget-{version}.zip"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return target
