"""Testing a Python WeCom client (wechatpy) against `wecom-material mock`.

Start the emulator and paste the `export` lines it prints, then run this file:

    wecom-material-mock &              # or `wecom-material mock`: the base URL, then export lines
    export WECOM_BASE_URL=... WECOM_CORP_ID=... WECOM_SECRET=...
    python3 wechatpy_client.py         # needs: pip install wechatpy==1.8.18 requests cryptography

The admin API (`$WECOM_BASE_URL/__mock/...`, JSON, no token) injects faults, adds media and
shows what the client sent. Exit status 0 when every check passed.
"""

import io
import os
import sys

import requests
from wechatpy.enterprise import WeChatClient
from wechatpy.exceptions import WeChatClientException

BASE = os.environ["WECOM_BASE_URL"].rstrip("/")
CORP_ID = os.environ["WECOM_CORP_ID"]
SECRET = os.environ["WECOM_SECRET"]


class EmulatedClient(WeChatClient):
    """wechatpy's enterprise client, pointed at the emulator (it hard-codes the gettoken URL)."""

    API_BASE_URL = BASE + "/cgi-bin/"

    def fetch_access_token(self):
        return self._fetch_access_token(
            url=BASE + "/cgi-bin/gettoken",
            params={"corpid": self.corp_id, "corpsecret": self.secret},
        )


def admin(method, path, **kwargs):
    """One admin call; a 400 carries {"error": "..."}."""
    r = requests.request(method, BASE + "/__mock/" + path, timeout=10, **kwargs)
    if r.status_code != 200:
        sys.exit(f"admin {method} {path}: {r.status_code} {r.text}")
    return r.json()


def main():
    admin("DELETE", "faults")
    admin("DELETE", "requests")
    client = EmulatedClient(CORP_ID, SECRET)

    # Upload: the official success body has "errmsg": "" (never decide success by errmsg).
    res = client.media.upload("file", ("report.txt", io.BytesIO(b"hello from wechatpy")))
    assert res["errcode"] == 0 and res["errmsg"] == "", res
    uploaded = res["media_id"]

    # -1 (system busy): wechatpy raises it; the caller decides to retry.
    admin("POST", "faults", json={"endpoint": "media/upload", "errcode": -1, "times": 1})
    try:
        client.media.upload("file", ("busy.txt", io.BytesIO(b"0123456789")))
        sys.exit("expected errcode -1")
    except WeChatClientException as e:
        assert e.errcode == -1, e

    # A media added through the admin API (raw bytes), as large as a test needs.
    body = bytes(range(256)) * 40
    added = admin(
        "POST",
        "media",
        params={"filename": "table.bin", "content_type": "application/octet-stream"},
        data=body,
    )["media_id"]

    # 42001 on the download: wechatpy fetches a new token and repeats the call once.
    # (client.get percent-encodes the query; media ids may contain + / =.)
    admin("POST", "faults", json={"endpoint": "media/get", "errcode": 42001, "times": 1})
    r = client.get("media/get", params={"media_id": added})
    assert r.content == body, r.content[:100]

    # Every token revoked (42001 from now on): the same refresh path.
    admin("POST", "tokens/revoke")
    r = client.get("media/get", params={"media_id": uploaded})
    assert r.content == b"hello from wechatpy", r.content

    # What the emulator saw: no token or secret in the log, errcodes per request.
    log = admin("GET", "requests")
    assert CORP_ID in str(log) and SECRET not in str(log)
    uploads = [e["errcode"] for e in log if e["path"] == "/cgi-bin/media/upload"]
    assert uploads == [0, -1], uploads
    gets = [e["errcode"] for e in log if e["path"] == "/cgi-bin/media/get"]
    assert gets == [42001, None, 42001, None], gets
    stats = admin("GET", "stats")
    assert stats["gettoken"] == 3, stats
    print("wechatpy against the emulator: all checks passed")


if __name__ == "__main__":
    main()
