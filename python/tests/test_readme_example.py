"""The root README's pytest example, verbatim (keep the two in step)."""

from conftest import need

need("wechatpy", "pip install wechatpy==1.8.18 requests cryptography")

from wechatpy.enterprise import WeChatClient  # noqa: E402  wechatpy 1.8: `enterprise`


def wechatpy_client(mock):
    class Client(WeChatClient):
        API_BASE_URL = mock.base_url + "/cgi-bin/"

        def fetch_access_token(self):  # wechatpy hard-codes the gettoken URL
            return self._fetch_access_token(
                url=mock.base_url + "/cgi-bin/gettoken",
                params={"corpid": self.corp_id, "corpsecret": self.secret},
            )

    return Client(mock.corp_id, mock.secret)


def test_a_download_survives_a_token_expiry(wecom_mock):
    media_id = wecom_mock.add_media(b"hello", "a.txt", "text/plain")
    wecom_mock.fault("media/get", errcode=42001)   # once; times=None keeps it until the reset
    r = wechatpy_client(wecom_mock).get("media/get", params={"media_id": media_id})
    assert r.content == b"hello"                    # wechatpy fetched a new token and retried
    gets = [e["errcode"] for e in wecom_mock.requests() if e["path"] == "/cgi-bin/media/get"]
    assert gets == [42001, None]
