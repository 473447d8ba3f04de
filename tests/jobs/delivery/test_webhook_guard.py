"""The SSRF guard for callback URLs, without the network (a fake resolver)."""

import pytest

from jobs.delivery.webhook_guard import UnsafeCallback, check_callback_url


def resolver(*addresses: str):
    return lambda host: list(addresses)


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://10.0.0.1/hook", "private"),
        ("http://172.16.5.4/hook", "private"),
        ("http://192.168.1.1/hook", "private"),
        ("http://127.0.0.1:8080/hook", "loopback"),
        ("http://[::1]/hook", "loopback"),
        ("http://[fc00::1]/hook", "private"),
        ("http://[::ffff:10.0.0.1]/hook", "private"),
        ("http://0.0.0.0/hook", "unspecified"),
        ("http://224.0.0.1/hook", "multicast"),
        ("http://240.0.0.1/hook", "reserved"),
        ("http://100.64.0.1/hook", "not a public"),
    ],
)
def test_non_public_addresses_are_refused_naming_the_reason(url, kind):
    with pytest.raises(UnsafeCallback, match=f"a {kind} address"):
        check_callback_url(url, allow_private=False, resolve=resolver())


def test_a_hostname_resolving_to_loopback_is_refused():
    with pytest.raises(UnsafeCallback, match=r"127\.0\.0\.1, a loopback address"):
        check_callback_url("https://hooks.example/x", False, resolver("93.184.216.34", "127.0.0.1"))


def test_a_public_host_passes():
    check_callback_url("https://hooks.example/x?a=1", False, resolver("93.184.216.34"))


def test_allow_private_skips_the_address_checks():
    check_callback_url("http://127.0.0.1:9/hook", allow_private=True, resolve=resolver())


@pytest.mark.parametrize(
    "url", ["ftp://example.com/x", "file:///etc/passwd", "example.com/x", "http:///x"]
)
def test_only_http_and_https_urls_with_a_host(url):
    with pytest.raises(UnsafeCallback, match="http:// or https://"):
        check_callback_url(url, allow_private=True, resolve=resolver())


def test_overlong_urls_are_refused():
    with pytest.raises(UnsafeCallback, match="at most 2000"):
        check_callback_url("https://example.com/" + "a" * 2000, True, resolver())


def test_an_unresolvable_host_is_refused():
    def fail(host: str) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(UnsafeCallback, match="does not resolve"):
        check_callback_url("https://nowhere.invalid/", False, fail)
