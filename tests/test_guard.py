"""The Host/Origin/token guard shared by the local web servers."""

from realtime_color.media.guard import Guard, is_loopback, new_token, same_token, split_host


def test_tokens_are_fresh_and_compared_whole():
    a, b = new_token(), new_token()
    assert a != b and len(a) >= 20
    assert same_token(a, a) and not same_token(a, b) and not same_token(None, a) and not same_token(a, "")
    assert not same_token(a[:-1], a)


def test_loopback_names():
    assert is_loopback("127.0.0.1") and is_loopback("127.5.0.1") and is_loopback("::1") and is_loopback("LOCALHOST")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.2") and not is_loopback("evil.example")
    assert split_host("[::1]:80") == ("::1", "80") and split_host("Example.org") == ("example.org", None)


def test_loopback_needs_no_token_but_checks_the_host():
    g = Guard.for_address("127.0.0.1", 8080)
    assert g.token is None and g.url() == "http://127.0.0.1:8080/"
    assert g.check({"Host": "127.0.0.1:8080"}, "/") is None
    assert g.check({"Host": "localhost:8080"}, "/") is None
    assert g.check({"Host": "evil.example:8080"}, "/")[0] == 403
    assert g.check({"Host": "127.0.0.1:9999"}, "/")[0] == 403
    assert g.check({}, "/")[0] == 403
    assert g.check({"Host": "127.0.0.1:8080", "Origin": "http://evil.example"}, "/")[0] == 403
    assert g.check({"Host": "127.0.0.1:8080", "Origin": "http://127.0.0.1:8080"}, "/") is None
    assert g.check({"Host": "127.0.0.1:8080", "Origin": "null"}, "/")[0] == 403


def test_beyond_loopback_a_token_is_required():
    g = Guard.for_address("0.0.0.0", 8080, allowed_hosts=["mybox.lan"])
    assert g.token and g.token in g.url()
    host = {"Host": "mybox.lan:8080"}
    assert g.check(host, "/")[0] == 401
    assert g.check(host, "/?token=wrong")[0] == 401
    assert g.check(host, f"/?token={g.token}") is None
    assert g.check({**host, "X-Rtcolor-Token": g.token}, "/") is None
    assert g.check({**host, "Cookie": f"rtcolor_token={g.token}"}, "/stream.mjpg") is None
    assert g.check({**host, "Cookie": 'bad"cookie;;='}, "/")[0] == 401
    assert g.check({"Host": "evil.example:8080"}, f"/?token={g.token}")[0] == 403
    assert g.check({"Host": "192.168.1.20:8080"}, f"/?token={g.token}") is None  # any address of this machine
    assert g.check({"Host": "192.168.1.20:8080"}, "/")[0] == 401
    assert Guard.for_address("192.168.1.20", 8080).check({"Host": "10.0.0.1:8080"}, "/")[0] == 403
    assert "rtcolor_token=" in g.cookie()


def test_a_given_token_and_a_forced_one():
    assert Guard.for_address("127.0.0.1", 1, token="abc").token == "abc"
    assert Guard.for_address("127.0.0.1", 1, require_token=True).token
