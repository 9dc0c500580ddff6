"""media/upload: types, sizes, the answer's shape and media scoped to the uploading corp."""

from __future__ import annotations

import requests
from emulator_helpers import START, WeComApi, message

from callback.devtools.emulator import Emulator, EmulatorApp


def test_upload_answer(api: WeComApi, emulator: Emulator) -> None:
    for kind in ("image", "voice", "video", "file"):
        answer = api.upload(kind)
        assert answer["errcode"] == 0 and answer["errmsg"] == "ok" and answer["type"] == kind
        assert answer["created_at"] == str(int(START)) and answer["media_id"]
    assert emulator.stats().uploads == 4


def test_upload_errors(api: WeComApi) -> None:
    assert api.upload("picture")["errcode"] == 40004
    assert api.upload("")["errcode"] == 40004
    assert api.upload("image", b"")["errcode"] == 40006
    assert api.upload("voice", b"x" * (2 * 1024 * 1024 + 1))["errcode"] == 40006
    url = f"{api.url}/cgi-bin/media/upload"
    params = {"access_token": api.token(), "type": "image"}
    wrong_field = requests.post(url, params=params, files={"file": ("a.png", b"x")}, timeout=5)
    assert wrong_field.json()["errcode"] == 41005
    no_filename = requests.post(url, params=params, data={"media": "x"}, timeout=5)
    assert no_filename.json()["errcode"] == 41005
    assert requests.get(url, params=params, timeout=5).json()["errcode"] == 40058
    assert api.upload("image", token="bad")["errcode"] == 40014


def test_media_belongs_to_the_uploading_corp(api: WeComApi, emulator: Emulator) -> None:
    emulator.add_app(EmulatorApp("ww_other", 1000002, "other-secret"))
    other = api.token("other-secret", "ww_other")
    media_id = api.upload(token=other)["media_id"]
    assert api.send(message("image", {"media_id": media_id}))["errcode"] == 40007
    assert api.send(message("image", {"media_id": media_id}), other)["errcode"] == 0
