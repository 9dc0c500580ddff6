"""Crypto: the official known-answer vectors, and interop both ways with wechatpy."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import xmltodict
from wechatpy.enterprise.crypto import PrpCrypto, WeChatCrypto

from callback.errors import BadRequest, ConfigError, ReceiveIdError, SignatureError
from callback.inbound import envelope
from callback.inbound.crypto import BLOCK, MsgCrypto, aes_key, signature
from callback.inbound.messages import parse
from tests.conftest import AES_KEY, CORP_ID, TOKEN


@pytest.fixture
def official(vectors: dict[str, Any]) -> MsgCrypto:
    return MsgCrypto.create(vectors["token"], vectors["encoding_aes_key"], vectors["receive_id"])


def test_url_verification_vector(vectors: dict[str, Any], official: MsgCrypto) -> None:
    v = vectors["url_verification"]
    assert official.sign(v["timestamp"], v["nonce"], v["echostr"]) == v["msg_signature"]
    official.verify(v["msg_signature"], v["timestamp"], v["nonce"], v["echostr"])
    assert official.decrypt(v["echostr"]) == v["expected_reply"].encode()


def test_xml_message_vector(vectors: dict[str, Any], official: MsgCrypto) -> None:
    v = vectors["xml_message"]
    env = envelope.read(v["body"].encode())
    expected = v["msg_signature"]
    assert signature(vectors["token"], v["timestamp"], v["nonce"], env.encrypted) == expected
    official.verify(v["msg_signature"], v["timestamp"], v["nonce"], env.encrypted)
    assert official.decrypt(env.encrypted) == v["expected_plaintext"].encode()
    # the official ciphertext pads to 32-byte blocks: pad value 30, beyond AES's 16
    raw = base64.b64decode(env.encrypted)
    assert len(raw) % BLOCK == 0


def test_json_message_vector(vectors: dict[str, Any], official: MsgCrypto) -> None:
    v = vectors["json_message"]
    env = envelope.read(v["body"].encode())
    assert env.as_json and env.agent_id == "218"
    official.verify(v["msg_signature"], v["timestamp"], v["nonce"], env.encrypted)
    plain = official.decrypt(env.encrypted)
    assert plain == v["expected_plaintext"].encode()
    assert parse(plain) == parse(vectors["xml_message"]["expected_plaintext"].encode())


def test_signature_is_checked_in_constant_time_form(official: MsgCrypto) -> None:
    good = official.sign("1", "2", "abc")
    official.verify(good.upper(), "1", "2", "abc")  # hex case does not matter
    for bad in ("", good[:-1], good[:-1] + "0" if good[-1] != "0" else good[:-1] + "1", "é" * 40):
        with pytest.raises(SignatureError):
            official.verify(bad, "1", "2", "abc")


def test_every_length_pads_to_32_byte_blocks_and_interoperates_with_wechatpy() -> None:
    """Each direction against wechatpy, not our encrypt against our decrypt (a symmetric slip,
    say a little-endian length field, would pass that): every pad value 1..32 occurs."""
    ours = MsgCrypto.create(TOKEN, AES_KEY, CORP_ID)
    theirs = PrpCrypto(base64.b64decode(AES_KEY + "="))
    for size in range(0, 80):
        message = "x" * size
        encrypted = ours.encrypt(message.encode())
        assert len(base64.b64decode(encrypted)) % BLOCK == 0
        assert theirs.decrypt(encrypted, CORP_ID) == message
        assert ours.decrypt(theirs.encrypt(message, CORP_ID).decode()) == message.encode()


def test_receive_id_mismatch() -> None:
    sender = MsgCrypto.create(TOKEN, AES_KEY, "wwothercorp")
    receiver = MsgCrypto.create(TOKEN, AES_KEY, CORP_ID)
    with pytest.raises(ReceiveIdError):
        receiver.decrypt(sender.encrypt(b"<xml/>"))


def test_bad_aes_key_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="43"):
        aes_key("short")
    with pytest.raises(ConfigError):
        aes_key("=" * 43)


def test_double_url_decoding_is_named() -> None:
    crypto = MsgCrypto.create(TOKEN, AES_KEY, CORP_ID)
    encrypted = crypto.encrypt(b"hello" * 10)
    broken = encrypted.replace("+", " ").replace("/", " ")
    if " " not in broken:
        broken = broken[:5] + " " + broken[6:]
    with pytest.raises(BadRequest, match="URL-decoded twice"):
        crypto.decrypt(broken)


def test_repr_hides_secrets() -> None:
    crypto = MsgCrypto.create(TOKEN, AES_KEY, CORP_ID)
    assert TOKEN not in repr(crypto) and AES_KEY not in repr(crypto)


# -- interop with an independent implementation (wechatpy) ------------------------------------


def test_wechatpy_encrypts_we_decrypt() -> None:
    theirs = WeChatCrypto(TOKEN, AES_KEY, CORP_ID)
    ours = MsgCrypto.create(TOKEN, AES_KEY, CORP_ID)
    message = "<xml><ToUserName><![CDATA[u]]></ToUserName><Content><![CDATA[你好]]></Content></xml>"
    body = theirs.encrypt_message(message, "12345", "1700000000")
    env = envelope.read(body.encode())
    node = xmltodict.parse(body)["xml"]
    ours.verify(node["MsgSignature"], node["TimeStamp"], node["Nonce"], env.encrypted)
    assert ours.decrypt(env.encrypted).decode() == message


@pytest.mark.parametrize("as_json", [False, True])
def test_our_replies_decrypt_with_wechatpy(as_json: bool) -> None:
    theirs = WeChatCrypto(TOKEN, AES_KEY, CORP_ID)
    ours = MsgCrypto.create(TOKEN, AES_KEY, CORP_ID)
    message = "<xml><Content><![CDATA[回复 reply]]></Content></xml>".encode()
    sealed = envelope.seal(ours, message, "1700000000", "987654", as_json=as_json)
    if as_json:
        doc = json.loads(sealed)
        encrypted, sig = doc["encrypt"], doc["msgsignature"]
        xml = f"<xml><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>"
        assert theirs.decrypt_message(xml, sig, doc["timestamp"], doc["nonce"]) == message.decode()
    else:
        node = xmltodict.parse(sealed)["xml"]
        decrypted = theirs.decrypt_message(
            sealed.decode(), node["MsgSignature"], node["TimeStamp"], node["Nonce"]
        )
        assert decrypted == message.decode()


def test_wechatpy_verifies_our_url_echo() -> None:
    theirs = WeChatCrypto(TOKEN, AES_KEY, CORP_ID)
    ours = MsgCrypto.create(TOKEN, AES_KEY, CORP_ID)
    echostr = ours.encrypt(b"1616140317555161061")
    sig = ours.sign("1409659589", "263014780", echostr)
    assert theirs.check_signature(sig, "1409659589", "263014780", echostr) == "1616140317555161061"
