"""The AI-bot protocol notes' test vectors (§2.1, §2.2/B.2, §7.1, B.3) against AibotSide's crypto.

Each vector is reproduced byte for byte; the project's MsgCrypto (receive id "") is checked
against the same vectors, since the stand-in bots of the other tests use it.
"""

from __future__ import annotations

import base64
import json

import pytest
from aibot_helpers import BOT_ID, EAK, TOKEN

from callback.devtools.aibot import (
    AibotCrypto,
    AibotSide,
    CryptoError,
    aes_key,
    compact,
    decrypt_media,
    encrypt_media,
    open_reply,
)
from callback.devtools.aibot.crypto import pad, unpad
from callback.inbound.crypto import MsgCrypto

CRYPTO = AibotCrypto.create(TOKEN, EAK)

STEP1_PLAIN = (
    '{"msgid":"5c1b2d7e9a0f4e6b8c3d2a1f0e9d8c7b","aibotid":"aibTESTBOT0001","chattype":"single",'
    '"from":{"userid":"zhangsan"},"response_url":"https://qyapi.weixin.qq.com/cgi-bin/aibot/'
    'response?response_code=RESPONSE_CODE_1","msgtype":"text","text":{"content":"广州今天天气怎么样？"}}'
)
STEP1_ENCRYPT = (
    "xpE5/p+r72bYNRzXWXQPrzNjjfw9Ql8CJqpWe8FANEV8Xih+T030LypLPtXCbO7XE5nziQrVPNbfaC/KB1PmlCbcEJjl"
    "uwjkqsBkSw/j9FAjXmDhzbEvYmBZuLYVnD+N767gzGeDQHku1hPyEfZjbtxoIDqGuWkmKnyW9y4Jjds+89NoxcrItu5m"
    "5uEzxj9g87EGBMuUsfGPXaqvgEiC2hZwzFVJFc6FLAwu4KKfba2yRhmlawsJtKK5RyUYxnRN+HbSklGPc8/Q5vf7oMdX"
    "9zJQIoJwI//HAL25aIlq00EwibTPzclf+yOi4BnBOAgwAjZQ9TuJUCJrMejp+1aajp/+e/65+b4qeXHC7Uq2mpWweb+i"
    "UisZhLV+Zm9dN1yzwi/HNWRJYh2IP9gswrjVQazts7ew6Femjx6d7/EFk90="
)
STEP3_ENCRYPT = (
    "qwfQmzxgRF3pyWTMBqnoFxhXco5lxH3ltWR7uMkmigS/RRCXidOOTSH3wL8Qkv7R9JMzuySLV3JRDYskIxPVvh5XoPyQ"
    "PJ0Y14IZlQxWxYGMgsQBx8gS9Zr2Ujo9ZXR6wMO5+Yie6qE//LG68YQ9+1N8jvyMw/znzwDnHUJoz1vLcpM6qxazmMMN"
    "MoJs17E00E7kfIawDvHzvIlIPSMf+iDlgUtJn6yPnDvNZrSxLGRgGsHcPfliWSmAaMeNCEP9"
)
REPLIES = [  # (§7.1 step, random prefix, plaintext, envelope), steps 2, 4 and 6
    (
        b"R1r2R3r4R5r6R7r8",
        '{"msgtype":"stream","stream":{"id":"stream-7f3a9c","finish":false,'
        '"content":"正在查询天气…","feedback":{"id":"fb-5c1b2d7e"}}}',
        {
            "encrypt": "np1XtR0oQG6SfY7EgO/tLkr3Mi4thM1oZMmnm3nR+x66qwjot5QnJ/9ERmgM+9cFySs2E6Kf"
            "RSkBgTKsGHq/ql8khq+oAn/tshtJqdslneYHdLDARzVLcJvnPZUqQiXcuccySJi2SgylRWTzexGf0twi"
            "tanF3f4gRHOIP54yl01n8zLHgi3V7jRnUFCrE4Egkp6sBU77EA18GC5nKh/XvA==",
            "msgsignature": "b283536d4a8c715ecd89cdfbaeac25eeb6016698",
            "timestamp": 1765000100,
            "nonce": "510001",
        },
    ),
    (
        b"R2r2R3r4R5r6R7r8",
        '{"msgtype":"stream","stream":{"id":"stream-7f3a9c","finish":false,'
        '"content":"**广州**今日天气：29度，"}}',
        {
            "encrypt": "0AjwUY2Sdy6MJAXqQyJUn0urjFTjkNZBgSOT2KwGHZ0wI+i7uOocDnkE8cWdiDTpzuNy6zUa"
            "AQWpr2SxBu1eoW37wT/rbEx0lKPIr6+2LMkZK4MOwSBKHe01IFp3/qFjuBeeZKoo/QWzN43k0b0uc/VE"
            "BJvwYRsTOaZAYRtatTFZNJKNof5U/b55p/1Bh6aZ7laRv5+GmZU9+V/l7dW4iA==",
            "msgsignature": "adc542ef65d2ea2c27c09519ad71ac7fe44560d2",
            "timestamp": 1765000101,
            "nonce": "510002",
        },
    ),
    (
        b"R3r2R3r4R5r6R7r8",
        '{"msgtype":"stream","stream":{"id":"stream-7f3a9c","finish":true,'
        '"content":"**广州**今日天气：29度，大部分多云，降雨概率：60%"}}',
        {
            "encrypt": "BtgR6BK9H95lwXViQwA4UIGT4uBfEygF73Ca0EYQ34mKKIfLrGfzbjD78+6q6Blmki5WTi8C"
            "JMeTznWLi98/MQS+BFH1avmXbDpMfvNekcDF8E+UJddBPN10rBFlmsX0k17ayqlGEsz33DweJpmA0rlU"
            "gPqzi+BhZhByiW7uwv3kuOZwLxMJNeVOSCBpe/NfPS8IpIW67GhMDnERRO3AQsmkEj2cfOxSlfftOAIi"
            "u2RUGsfKP5wU9UNfkTX8mRHT",
            "msgsignature": "5433f0827195f04212ea7d59269d94f133f29671",
            "timestamp": 1765000102,
            "nonce": "510003",
        },
    ),
]
ECHOSTR = "HjsglepQHt76ZRNQ36lqtpMEFcNIYjgyNXIofTL9oh0zrHrWznetNYK4hm8WgVldIODatCrqoQ9BxQt6ISO/oQ=="


def side() -> AibotSide:
    return AibotSide("http://127.0.0.1:9/callback", TOKEN, EAK, BOT_ID)


def test_key_and_iv_of_the_test_credentials() -> None:
    assert CRYPTO.key == bytes(range(32))
    assert CRYPTO.key[:16].hex() == "000102030405060708090a0b0c0d0e0f"


def test_step1_callback_is_reproduced_byte_for_byte() -> None:
    """§7.1 step 1: the builder's plaintext, encrypted with prefix A1b2…, and the signed query."""
    bot = side()
    message = bot.text(
        "广州今天天气怎么样？",
        msgid="5c1b2d7e9a0f4e6b8c3d2a1f0e9d8c7b",
        response_url="https://qyapi.weixin.qq.com/cgi-bin/aibot/response?response_code=RESPONSE_CODE_1",
    )
    assert compact(message).decode() == STEP1_PLAIN
    sealed = bot.request(
        message, timestamp="1765000100", nonce="510001", random_prefix=b"A1b2C3d4E5f6G7h8"
    )
    assert sealed.body == b'{"encrypt":"' + STEP1_ENCRYPT.encode() + b'"}'
    assert sealed.query == {
        "msg_signature": "879d29c3389821d6c0ff6181b0efbcf8b11cf2d4",
        "timestamp": "1765000100",
        "nonce": "510001",
    }


def test_step3_refresh_is_reproduced() -> None:
    """§7.1 step 3: the refresh builder (msgtype stream, stream.id, no response_url)."""
    bot = side()
    message = json.loads(STEP1_PLAIN)
    refresh = bot.refresh(message, "stream-7f3a9c", msgid="9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b")
    assert "response_url" not in refresh
    sealed = bot.request(
        refresh, timestamp="1765000101", nonce="510002", random_prefix=b"B1b2C3d4E5f6G7h8"
    )
    assert json.loads(sealed.body) == {"encrypt": STEP3_ENCRYPT}
    assert sealed.query["msg_signature"] == "b875a14fc2c2d2fa91095541f67aa3329605e245"


@pytest.mark.parametrize(("prefix", "plain", "sealed"), REPLIES)
def test_replies_encrypt_and_open(prefix: bytes, plain: str, sealed: dict[str, object]) -> None:
    """§7.1 steps 2, 4, 6: encrypting reproduces each reply; open_reply accepts it (strict)."""
    assert CRYPTO.encrypt(plain.encode(), prefix) == sealed["encrypt"]
    nonce = str(sealed["nonce"])
    assert (
        CRYPTO.sign(str(sealed["timestamp"]), nonce, str(sealed["encrypt"]))
        == sealed["msgsignature"]
    )
    opened = open_reply(CRYPTO, 200, json.dumps(sealed).encode(), nonce, strict=True)
    assert opened.issues == ()
    assert opened.reply == json.loads(plain)


def test_verification_vector() -> None:
    """§2.2 / B.2: the echostr decrypts to 8361952147398264; the GET is signed over echostr."""
    opened = CRYPTO.decrypt(ECHOSTR)
    assert (opened.message, opened.receive_id) == (b"8361952147398264", b"")
    assert CRYPTO.encrypt(b"8361952147398264", b"9876543210987654") == ECHOSTR
    assert (
        CRYPTO.sign("1765000000", "372619", ECHOSTR) == "f900d4c0ec93244a3d2703b4ce1ef0abfc499db0"
    )


def test_media_vector() -> None:
    """B.3: per-URL key (base64 without '='), AES-256-CBC, IV key[:16], PKCS#7 to 32."""
    key = aes_key("iE9e3lxpQEjI9hIKt+V4XUi6trnd7y+1rzQMH4UOoT8")
    ciphertext = base64.b64decode("3cxtvV8IGBqQNaL1rHeCKOx58UzzZMF/2w3NaeAvFns=")
    assert decrypt_media(ciphertext, key) == b"hello aibot media\n"
    assert encrypt_media(b"hello aibot media\n", key) == ciphertext


def test_padding_is_to_32_bytes_with_a_full_block_when_aligned() -> None:
    assert pad(b"x" * 32)[32:] == bytes([32]) * 32
    assert len(pad(b"x" * 17)) == 32
    assert unpad(pad(b"abc")) == b"abc"
    with pytest.raises(CryptoError):
        unpad(b"x" * 31 + b"\x21")  # 33 is beyond a 32-byte pad
    with pytest.raises(CryptoError):
        unpad(b"x" * 30 + b"\x01\x02")  # pad bytes that disagree


def test_signature_sorts_the_four_strings() -> None:
    import hashlib

    joined = "".join(sorted([TOKEN, "1765000100", "510001", STEP1_ENCRYPT]))
    assert (
        CRYPTO.sign("1765000100", "510001", STEP1_ENCRYPT)
        == hashlib.sha1(joined.encode()).hexdigest()
    )


def test_msgcrypto_with_empty_receive_id_matches_the_vectors() -> None:
    """The project's MsgCrypto (used by the stand-in bots) agrees with every §7.1 vector."""
    theirs = MsgCrypto.create(TOKEN, EAK, "")
    assert theirs.decrypt(STEP1_ENCRYPT).decode() == STEP1_PLAIN
    assert theirs.decrypt(ECHOSTR) == b"8361952147398264"
    for prefix, plain, sealed in REPLIES:
        fixed = MsgCrypto(theirs.token, theirs.key, "", random_prefix=lambda p=prefix: p)
        assert fixed.encrypt(plain.encode()) == sealed["encrypt"]
