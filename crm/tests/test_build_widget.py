from __future__ import annotations

import json
import struct
import zipfile

from django.core.management import call_command

from crm.widget_bundle import MAX_IMAGE_BYTES

REQUIRED_IMAGES = {
    "images/logo_main.png": (400, 272),
    "images/logo_small.png": (108, 108),
    "images/logo.png": (130, 100),
    "images/logo_medium.png": (240, 84),
    "images/logo_min.png": (84, 84),
    "images/logo_dp.png": (174, 109),
}


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_build_widget_writes_an_uploadable_zip(tmp_path, settings):
    settings.PUBLIC_URL = "https://beetel.example.ru"

    call_command("build_widget", output_dir=str(tmp_path))

    (archive_path,) = tmp_path.glob("*.zip")
    with zipfile.ZipFile(archive_path) as archive:
        names = set(archive.namelist())
        manifest = json.loads(archive.read("manifest.json"))
        ru = json.loads(archive.read("i18n/ru.json"))
        en = json.loads(archive.read("i18n/en.json"))
        script = archive.read("script.js").decode()
        images = {name: archive.read(name) for name in REQUIRED_IMAGES}

    assert "manifest.json" in names and "script.js" in names  # at the root, not in a folder
    widget = manifest["widget"]
    for key in ("name", "description", "short_description", "version", "locale", "installation"):
        assert key in widget
    assert widget["interface_version"] == 2 and widget["init_once"] is True
    assert set(widget["locale"]) == {"ru", "en"}
    assert {"everywhere", "ccard-1", "lcard-1"} <= set(manifest["locations"])
    for translations in (ru, en):
        assert translations["widget"]["name"] == "Звонок Beeline"
        assert translations["widget"]["description"]
        # every i18n key the manifest points to exists
        for ref in ("name", "description", "short_description"):
            section, key = widget[ref].split(".")
            assert translations[section][key]
    assert set(ru["messages"]) == set(en["messages"])
    assert "https://beetel.example.ru" in script and "__BEETEL_PUBLIC_URL__" not in script
    assert "define(" in script and "add_action('phone'" in script
    assert "/amocrm/widget/status" in script and "$authorizedAjax" in script
    for name, size in REQUIRED_IMAGES.items():
        assert _png_size(images[name]) == size, name
        assert len(images[name]) <= MAX_IMAGE_BYTES
    assert not any(name.endswith(".py") for name in names)
