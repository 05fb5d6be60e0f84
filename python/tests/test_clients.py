"""Python WeCom clients in wide use, against the default emulator through the fixture:
the repository's wechatpy example client, and every download of wechatpy and
py-wecom-toolkit, which splice the media id into the URL unencoded."""

import io
import os
import subprocess
import sys

from conftest import EXAMPLES, need


def test_the_wechatpy_example_client_passes(wecom_mock):
    need("wechatpy", "pip install wechatpy==1.8.18 requests cryptography")
    env = dict(
        os.environ,
        WECOM_BASE_URL=wecom_mock.base_url,
        WECOM_CORP_ID=wecom_mock.corp_id,
        WECOM_SECRET=wecom_mock.secret,
    )
    run = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, "wechatpy_client.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "all checks passed" in run.stdout
    stats = wecom_mock.stats()
    assert (stats["gettoken"], stats["media/upload"], stats["media/get"]) == (3, 2, 4)


def test_every_wechatpy_download_works(wecom_mock):
    need("wechatpy", "pip install wechatpy==1.8.18 requests cryptography")
    requests = need("requests", "pip install requests")
    from wechatpy.enterprise import WeChatClient

    base = wecom_mock.base_url

    class Client(WeChatClient):
        API_BASE_URL = base + "/cgi-bin/"

        def fetch_access_token(self):
            return self._fetch_access_token(
                url=base + "/cgi-bin/gettoken",
                params={"corpid": self.corp_id, "corpsecret": self.secret},
            )

    client = Client(wecom_mock.corp_id, wecom_mock.secret)
    for i in range(12):
        data = ("wechatpy file %d " % i).encode() * 50
        media_id = client.media.upload("file", ("f%d.txt" % i, io.BytesIO(data)))["media_id"]
        # media.download builds the URL by string concatenation, host hard-coded.
        url = client.media.get_url(media_id).replace("https://qyapi.weixin.qq.com", base)
        r = requests.get(url, timeout=30)
        assert r.status_code == 200 and r.content == data, (media_id, r.content[:200])


def test_every_py_wecom_toolkit_download_works(wecom_mock):
    need("py_wecom_toolkit", "pip install py-wecom-toolkit==4.0.11")
    from py_wecom_toolkit.server.cache import AccessTokenMemoryCache
    from py_wecom_toolkit.server.material.client import Client

    with Client(
        wecom_mock.corp_id,
        wecom_mock.secret,
        cache=AccessTokenMemoryCache(),
        base_url=wecom_mock.base_url,
    ) as client:
        for i in range(12):
            data = ("toolkit file %d " % i).encode() * 50
            up = client.upload("file", data, filename="t%d.txt" % i)
            assert up.ok, up
            assert client.download(up.media_id) == data, up.media_id
    assert wecom_mock.stats()["media/get"] == 12
