"""Fixtures for the emulator tests: one real EmulatorServer on 127.0.0.1, reset for every test.

A test's held connections (late or withheld answers) are released when it ends.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from emulator_helpers import START, WeComApi

from callback.devtools.emulator import AibotConnectionServer, Emulator, EmulatorServer


@pytest.fixture(scope="session")
def emulator_server() -> Iterator[EmulatorServer]:
    with EmulatorServer(Emulator(clock=lambda: START)) as server:
        yield server


@pytest.fixture
def emulator(emulator_server: EmulatorServer) -> Iterator[Emulator]:
    emulator_server.emulator.reset()
    yield emulator_server.emulator
    emulator_server.emulator.release_held()


@pytest.fixture
def api(emulator_server: EmulatorServer, emulator: Emulator) -> Iterator[WeComApi]:
    with requests.Session() as session:
        yield WeComApi(emulator_server.url, session)


@pytest.fixture(scope="session")
def ws_server() -> Iterator[AibotConnectionServer]:
    """The long-connection server over its own emulator (clock fixed at START)."""
    with AibotConnectionServer(Emulator(clock=lambda: START)) as server:
        yield server


@pytest.fixture
def ws(ws_server: AibotConnectionServer) -> Iterator[AibotConnectionServer]:
    """The long-connection server, reset (default bots and knobs, no connections) per test."""
    ws_server.emulator.reset()
    yield ws_server
    ws_server.emulator.reset()
