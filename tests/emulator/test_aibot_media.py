"""MediaHost: media URLs as in HTTP mode (§2.5): bytes encrypted with the bot's key, 5 minutes."""

from __future__ import annotations

import base64

import requests
from aibot_helpers import BOT_ID, EAK, TOKEN, StandInBot, stream

from callback.devtools.aibot import AibotSide, MediaHost, aes_key, decrypt_media
from callback.inbound.crypto import MsgCrypto

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


class Clock:
    def __init__(self) -> None:
        self.now = 1_765_000_000.0

    def __call__(self) -> float:
        return self.now


def test_served_bytes_decrypt_with_the_bots_key_and_carry_the_name() -> None:
    with MediaHost(aes_key(EAK)) as host:
        url = host.add(PNG, filename="猫.png", content_type="image/png")
        response = requests.get(url, timeout=5)
    assert response.status_code == 200
    assert response.content != PNG and len(response.content) % 32 == 0
    assert decrypt_media(response.content, aes_key(EAK)) == PNG
    assert response.headers["Content-Disposition"] == "attachment; filename*=UTF-8''%E7%8C%AB.png"
    assert host.downloads(url) == 1


def test_aligned_files_get_a_whole_pad_block() -> None:
    with MediaHost(aes_key(EAK)) as host:
        data = requests.get(host.add(b"x" * 64), timeout=5).content
    assert len(data) == 96


def test_a_url_works_for_five_minutes() -> None:
    clock = Clock()
    with MediaHost(aes_key(EAK), clock=clock) as host:
        url = host.add(b"report")
        clock.now += 299.9
        assert requests.get(url, timeout=5).status_code == 200
        clock.now += 0.1
        expired = requests.get(url, timeout=5)
        assert host.downloads(url) == 1
    assert expired.status_code == 403 and b"Request has expired" in expired.content


def test_a_per_url_key_can_be_given() -> None:
    key = aes_key("iE9e3lxpQEjI9hIKt+V4XUi6trnd7y+1rzQMH4UOoT8")
    with MediaHost(aes_key(EAK)) as host:
        data = requests.get(host.add(b"hello aibot media\n", key=key), timeout=5).content
    assert base64.b64encode(data) == b"3cxtvV8IGBqQNaL1rHeCKOx58UzzZMF/2w3NaeAvFns="  # B.3


def test_a_bot_downloads_and_decrypts_an_image_message() -> None:
    """A stand-in bot fetches the image URL of the callback and answers with its size."""
    key = MsgCrypto.create(TOKEN, EAK, "").key

    def bot(plain: dict[str, str | dict[str, str]]) -> dict[str, object]:
        image = plain["image"]
        assert isinstance(image, dict)
        raw = requests.get(image["url"], timeout=5).content
        return stream("s", f"{len(decrypt_media(raw, key))} bytes", True)

    with MediaHost(aes_key(EAK)) as host, StandInBot(bot) as server:
        side = AibotSide(server.url, TOKEN, EAK, BOT_ID)
        result = side.converse(side.image(host.add(PNG, content_type="image/png")))
    assert result.final_content == f"{len(PNG)} bytes"
    assert host.downloads() == 1
