"""pytest plugin (registered through the ``pytest11`` entry point): a ``wecom_mock`` fixture.

One emulator per test session (``wecom_mock_session``), reset before each test that asks for
``wecom_mock``: every test starts with no media, tokens, faults or log, the clock at the
start and the settings of the command line. Extra emulator flags come from the ini option
``wecom_mock_args`` (e.g. ``wecom_mock_args = --strict-ids --app ww-b:s2``) or the
``--wecom-mock-arg`` option (repeatable).
"""

import shlex

import pytest

from . import start


def pytest_addoption(parser):
    parser.addini(
        "wecom_mock_args",
        "extra flags of the wecom-material-mock emulator (shell words)",
        default="",
    )
    parser.addoption(
        "--wecom-mock-arg",
        action="append",
        default=[],
        metavar="FLAG",
        help="one more flag for the wecom-material-mock emulator (repeatable)",
    )


@pytest.fixture(scope="session")
def wecom_mock_session(pytestconfig):
    """The session's emulator, not reset between tests."""
    args = shlex.split(pytestconfig.getini("wecom_mock_args") or "")
    args += pytestconfig.getoption("wecom_mock_arg") or []
    mock = start(args)
    try:
        yield mock
    finally:
        mock.stop()


@pytest.fixture
def wecom_mock(wecom_mock_session):
    """The session's emulator, reset before the test."""
    wecom_mock_session.reset()
    return wecom_mock_session
