"""The fixture and the object API against the real emulator binary of the wheel."""

import json
import urllib.error
import urllib.request

import pytest

import wecom_material_mock
from wecom_material_mock import WecomMockError

THREE_DAYS = 3 * 24 * 3600


def call(url, data=None, headers=None):
    """(status, body bytes) of one request."""
    request = urllib.request.Request(url, data=data, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


def token(mock):
    status, body, _ = call(
        "%s/cgi-bin/gettoken?corpid=%s&corpsecret=%s" % (mock.base_url, mock.corp_id, mock.secret)
    )
    answer = json.loads(body)
    assert status == 200 and answer["errcode"] == 0, answer
    return answer["access_token"]


def get_media(mock, tok, media_id, headers=None):
    # Spliced in unencoded, as wechatpy and py-wecom-toolkit do.
    return call(
        "%s/cgi-bin/media/get?access_token=%s&media_id=%s" % (mock.base_url, tok, media_id),
        headers=headers,
    )


def test_the_fixture_is_a_running_emulator_with_its_credentials(wecom_mock):
    assert wecom_mock.base_url.startswith("http://127.0.0.1:")
    assert wecom_mock.corp_id == "ww-mock-corp" and wecom_mock.secret == "mock-secret"
    assert wecom_mock.pid > 0
    assert len(token(wecom_mock)) > 20
    assert wecom_mock.secret not in repr(wecom_mock)


def test_every_stats_key_is_there_from_the_start(wecom_mock):
    stats = wecom_mock.stats()
    for key in ("gettoken", "media/upload", "media/get", "other", "throttled_45033",
                "evicted_expired", "evicted_budget", "media_count", "media_bytes"):
        assert stats[key] == 0, (key, stats)


def test_added_media_download_with_unencoded_ids(wecom_mock):
    tok = token(wecom_mock)
    for i in range(8):
        data = bytes([i]) * 1000
        media_id = wecom_mock.add_media(data, "f%d.bin" % i, "application/octet-stream")
        assert all(c.isalnum() or c in "-_" for c in media_id), media_id
        status, body, _ = get_media(wecom_mock, tok, media_id)
        assert status == 200 and body == data


def test_fault_applies_times_then_stops(wecom_mock):
    tok = token(wecom_mock)
    media_id = wecom_mock.add_media(b"0123456789", "a.txt")
    answer = wecom_mock.fault("media/get", errcode=-1, times=2)
    assert answer == {"endpoint": "media/get", "fault": "errcode", "times": 2}
    for _ in range(2):
        assert json.loads(get_media(wecom_mock, tok, media_id)[1])["errcode"] == -1
    assert get_media(wecom_mock, tok, media_id)[1] == b"0123456789"
    wecom_mock.fault("media/get", status=502, body="<html>bad gateway</html>")
    status, body, _ = get_media(wecom_mock, tok, media_id)
    assert (status, body) == (502, b"<html>bad gateway</html>")
    wecom_mock.fault("media/get", errcode=40007, content_type="application/octet-stream", times=None)
    for _ in range(3):
        status, body, headers = get_media(wecom_mock, tok, media_id)
        assert json.loads(body)["errcode"] == 40007
        assert headers["Content-Type"] == "application/octet-stream"
    assert wecom_mock.clear_faults() == 1


def test_revoked_tokens_answer_42001_and_the_clock_expires_media(wecom_mock):
    tok = token(wecom_mock)
    media_id = wecom_mock.add_media(b"expires in three days", "a.txt")
    assert wecom_mock.revoke_tokens() == 1
    assert json.loads(get_media(wecom_mock, tok, media_id)[1])["errcode"] == 42001
    start = wecom_mock.now()
    assert wecom_mock.advance(THREE_DAYS) >= start + THREE_DAYS
    tok = token(wecom_mock)
    assert json.loads(get_media(wecom_mock, tok, media_id)[1])["errcode"] == 40007
    assert wecom_mock.stats()["evicted_expired"] == 1
    assert wecom_mock.set_time(1_000_000_000) < 1_000_000_000 + 600


def test_reset_before_each_test_part_one(wecom_mock):
    wecom_mock.add_media(b"left behind?", "a.txt")
    wecom_mock.fault("gettoken", errcode=-1, times=None)
    wecom_mock.settings(latency_ms=50)


def test_reset_before_each_test_part_two(wecom_mock):
    # Whatever the test before left (it ran first: pytest keeps file order) is gone.
    assert wecom_mock.stats()["media_count"] == 0
    assert wecom_mock.settings()["latency_ms"] == 0
    assert len(token(wecom_mock)) > 20, "no fault left on gettoken"


def test_serve_file_with_range_for_upload_by_url(wecom_mock):
    data = bytes(range(256)) * 100
    url = wecom_mock.serve_file(data, "clip.mp4")
    assert url == wecom_mock.base_url + "/mock-files/clip.mp4"
    status, body, headers = call(url, headers={"Range": "bytes=10-19"})
    assert (status, body) == (206, data[10:20])
    assert headers["Content-Range"] == "bytes 10-19/25600"


def test_requests_show_the_log_with_secrets_masked(wecom_mock):
    tok = token(wecom_mock)
    get_media(wecom_mock, tok, "no-such-id")
    log = wecom_mock.requests()
    assert [e["path"] for e in log] == ["/cgi-bin/gettoken", "/cgi-bin/media/get"]
    assert log[1]["errcode"] == 40007
    assert tok not in json.dumps(log) and wecom_mock.secret not in json.dumps(log)
    assert wecom_mock.clear_requests() == 2


def test_settings_change_the_rules(wecom_mock):
    answer = wecom_mock.settings(upload_img_daily_quota=3, limits={"file": 1024}, strict_ids=True)
    assert answer["upload_img_daily_quota"] == 3 and answer["limits"]["file"] == 1024
    ids = [wecom_mock.add_media(b"123456", "a.bin") for _ in range(2)]
    assert any("+" in i for i in ids), ids


def test_bad_input_raises_with_the_emulators_message(wecom_mock):
    with pytest.raises(WecomMockError, match="empty"):
        wecom_mock.add_media(b"", "a.bin")
    with pytest.raises(WecomMockError, match="unknown endpoint"):
        wecom_mock.fault("media/nope", errcode=1)
    with pytest.raises(WecomMockError, match="404"):
        wecom_mock.delete_media("no-such-id")


def test_out_of_scope_apis_answer_wecoms_json_error(wecom_mock):
    tok = token(wecom_mock)
    status, body, _ = call(
        "%s/cgi-bin/message/send?access_token=%s" % (wecom_mock.base_url, tok), data=b"{}"
    )
    assert status == 200 and json.loads(body)["errcode"] == 48002


def test_start_and_stop_own_emulators_with_flags():
    with wecom_material_mock.start(["--corp-id", "ww-own", "--app", "ww-two:s2"]) as mock:
        assert mock.corp_id == "ww-own"
        assert [a["corp_id"] for a in mock.apps] == ["ww-own", "ww-two"]
        process = mock._process
    assert process.poll() is not None, "stopped on exit"


def test_a_bad_flag_is_a_clear_error():
    with pytest.raises(WecomMockError, match="no JSON line"):
        wecom_material_mock.start(["--no-such-flag"], timeout=30)


def test_the_plugin_is_registered_and_reads_its_ini_option(pytester):
    pytester.makeini("[pytest]\nwecom_mock_args = --strict-ids --corp-id ww-ini\n")
    pytester.makepyfile(
        """
        def test_one(wecom_mock):
            assert wecom_mock.corp_id == "ww-ini"
            assert wecom_mock.settings()["strict_ids"] is True
            wecom_mock.add_media(b"123456", "a.bin")

        def test_two(wecom_mock, wecom_mock_session):
            assert wecom_mock is wecom_mock_session
            assert wecom_mock.stats()["media_count"] == 0
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
