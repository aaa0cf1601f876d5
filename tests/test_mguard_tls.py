"""The mGuard simulator over real HTTPS: certificates verified or pinned (never skipped),
basic auth, and the probe a dry run uses to refuse anything that is not a simulator."""
from __future__ import annotations

import dataclasses
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import MappingProxyType

import pytest
import requests

from otpatch.modules.contract.errors import DeviceUnreachable, InputError
from otpatch.modules.mguard.lab import start_simulators
from otpatch.modules.mguard.probe import probe
from otpatch.modules.mguard.creds import CredentialsMissing
from otpatch.modules.mguard.driver import AuthRefused, CertificateRefused, MguardDriver
from otpatch.modules.mguard.simcert import write_pair, self_signed
from otpatch.modules.mguard.tls import TrustMissing, parse_fingerprint
from tests.fixtures.mguard.support import (PASSWORD, Lab, lab_password, make_lab,  # noqa: F401
                                           mguard_host, trusting)



def url(lab: Lab, path: str = "/nph-status.cgi?action=version") -> str:
    return f"https://{lab.handle.endpoints('lab-mguard-1')['https']}{path}"


def test_requests_with_verification_on_trusts_the_lab_ca_file(make_lab):
    lab = make_lab()
    resp = requests.get(url(lab), verify=lab.handle.ca_file("lab-mguard-1"),
                        auth=("admin", PASSWORD), timeout=5)
    assert resp.status_code == 200
    assert "firmware=10.3.1" in resp.text


def test_requests_default_trust_store_refuses_the_simulator(make_lab):
    lab = make_lab()
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(url(lab), auth=("admin", PASSWORD), timeout=5)


@pytest.mark.parametrize("how", ["ca_file", "fingerprint", "both"])
def test_driver_reads_the_device_with_each_way_of_trusting_it(make_lab, how):
    lab = make_lab()
    host = lab.host(how="ca_file" if how == "both" else how)
    if how == "both":
        host = dataclasses.replace(host, vars=MappingProxyType(
            {**host.vars, "tls_fingerprint": lab.handle.fingerprint("lab-mguard-1")}))
    with MguardDriver(host) as driver:
        assert driver.version()["firmware"] == "10.3.1"


def test_a_ca_file_and_a_wrong_pin_is_refused(make_lab):
    lab = make_lab()
    host = lab.host(how="ca_file")
    host = dataclasses.replace(host, vars=MappingProxyType({**host.vars,
                                                            "tls_fingerprint": "cd" * 32}))
    with MguardDriver(host) as driver, pytest.raises(CertificateRefused, match="pinned"):
        driver.version()


@pytest.mark.parametrize("pin", [
    "sha256:" + ":".join(["AB"] * 32),
    "ab" * 32,
], ids=["colon-form", "plain-hex"])
def test_a_different_pinned_fingerprint_is_refused_with_both_fingerprints(make_lab, pin):
    lab = make_lab()
    host = dataclasses.replace(lab.host(), vars=MappingProxyType({"tls_fingerprint": pin}))
    with MguardDriver(host) as driver, pytest.raises(CertificateRefused) as err:
        driver.version()
    shown = str(err.value)
    assert "not the pinned one" in shown and "Nothing was sent" in shown
    assert lab.handle.fingerprint("lab-mguard-1") in shown  # what it presents, to compare


def test_a_certificate_not_signed_by_the_ca_file_is_refused(make_lab, tmp_path):
    lab = make_lab()
    other = write_pair(tmp_path / "other", *self_signed("someone-else", ("127.0.0.1",)))
    host = dataclasses.replace(lab.host(), vars=MappingProxyType(
        {"tls_ca_file": str(other.cert)}))
    with MguardDriver(host) as driver, pytest.raises(CertificateRefused) as err:
        driver.version()
    assert "not trusted" in str(err.value)
    assert str(other.cert) in str(err.value)


def test_wrong_password_is_a_clear_auth_error(make_lab, monkeypatch):
    lab = make_lab()
    monkeypatch.setenv("OTPATCH_TEST_MGUARD_PASSWORD", "not-the-password")
    with MguardDriver(lab.host()) as driver, pytest.raises(AuthRefused) as err:
        driver.version()
    shown = str(err.value)
    assert "refused the login of user 'admin' (HTTP 401)" in shown
    assert "OTPATCH_TEST_MGUARD_PASSWORD" in shown and "not-the-password" not in shown


def test_no_password_in_the_environment_is_said_plainly(make_lab, monkeypatch):
    lab = make_lab()
    monkeypatch.delenv("OTPATCH_TEST_MGUARD_PASSWORD")
    with pytest.raises(CredentialsMissing, match="OTPATCH_TEST_MGUARD_PASSWORD .* not set"):
        MguardDriver(lab.host())


def test_a_password_file_works_like_the_environment(make_lab, tmp_path):
    lab = make_lab()
    secret = tmp_path / "mguard.pw"
    secret.write_text(PASSWORD + "\n")
    host = dataclasses.replace(lab.host(), credentials=MappingProxyType(
        {"username": "admin", "password_file": str(secret)}))
    with MguardDriver(host) as driver:
        assert driver.version()["model"] == "FL MGUARD 4302"


def test_a_host_without_tls_trust_is_refused_before_any_connection(lab_password):
    with pytest.raises(TrustMissing, match="no tls_ca_file or tls_fingerprint"):
        MguardDriver(mguard_host())


@pytest.mark.parametrize("text", ["sha256:12", "sha1:" + "ab" * 20, "zz" * 32])
def test_malformed_fingerprints_are_refused(text):
    with pytest.raises(ValueError, match="not a SHA-256 fingerprint"):
        parse_fingerprint(text)


def test_the_lab_keeps_its_certificate_across_restarts_and_writes_the_ca_file(
        lab_password, tmp_path):
    ca_file = tmp_path / "lab-certs" / "lab-mguard-1.pem"
    host = mguard_host(tls_ca_file=str(ca_file))
    with start_simulators([host], state_dir=tmp_path / "state") as first:
        pin = first.fingerprint("lab-mguard-1")
        served = dataclasses.replace(host, endpoints=MappingProxyType(
            first.endpoints("lab-mguard-1")))
        with MguardDriver(served) as driver:  # trusts the file the lab wrote
            assert driver.version()["firmware"] == "10.3.1"
    with start_simulators([host], state_dir=tmp_path / "state") as second:
        assert second.fingerprint("lab-mguard-1") == pin
    assert "PRIVATE KEY" not in ca_file.read_text()


def test_simulators_refuse_to_listen_beyond_loopback(lab_password):
    with pytest.raises(InputError, match="loopback addresses only, not 0.0.0.0"):
        start_simulators([mguard_host()], bind="0.0.0.0")


def test_a_simulator_never_stands_in_for_a_host_with_a_real_address(lab_password):
    real = dataclasses.replace(mguard_host(), endpoints=MappingProxyType(
        {"https": "10.20.20.1:443"}))
    with pytest.raises(InputError, match="not a loopback address"):
        start_simulators([real])


def test_a_port_in_use_fails_the_start_and_leaves_nothing_running(lab_password):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        first = mguard_host("lab-mguard-1")
        second = dataclasses.replace(mguard_host("lab-mguard-2"), endpoints=MappingProxyType(
            {"https": f"127.0.0.1:{port}"}))
        with pytest.raises(OSError):
            start_simulators([first, second])


def test_hosts_not_marked_simulator_and_other_devices_get_no_simulator(lab_password):
    plc = dataclasses.replace(mguard_host("lab-plc-1"), model="Modicon M580", device="m580")
    real = dataclasses.replace(mguard_host("prod-mguard-1"), simulator=False)
    with start_simulators([plc, real, mguard_host()]) as lab:
        assert lab.hosts == ("lab-mguard-1",)


# -- the dry-run probe ------------------------------------------------------------------------

def test_probe_recognises_the_simulator(make_lab):
    lab = make_lab()
    answers, detail = probe(lab.host())
    assert answers is True
    assert "otpatch mGuard simulator" in detail


def test_probe_ignores_hosts_that_are_not_mguards():
    plc = dataclasses.replace(mguard_host(), vendor="Schneider Electric", model="Modicon M580",
                              device="m580")
    assert probe(plc) is None


def test_probe_with_nothing_listening_is_unreachable(lab_password, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    cert = write_pair(tmp_path, *self_signed("x", ("127.0.0.1",)))
    host = dataclasses.replace(mguard_host(tls_ca_file=str(cert.cert)),
                               endpoints=MappingProxyType({"https": f"127.0.0.1:{port}"}))
    answers, detail = probe(host)
    assert answers is False and detail.startswith("unreachable")


def test_probe_of_the_simulator_of_another_host_says_so(make_lab):
    lab = make_lab()
    typo = dataclasses.replace(lab.host(), name="lab-mguard-2")
    answers, detail = probe(typo)
    assert answers is False
    assert "simulator of 'lab-mguard-1', not of this host" in detail


class _PlainHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"<html>some other web server</html>"
        self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def plain_https(request, tmp_path):
    """A real HTTPS server on 127.0.0.1 that is not an otpatch simulator."""
    cert = write_pair(tmp_path / "plain", *self_signed("plain", ("127.0.0.1",)))
    server = HTTPServer(("127.0.0.1", 0), _PlainHandler)
    server.socket = cert.server_context().wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=lambda: server.serve_forever(poll_interval=0.05),
                              daemon=True)
    thread.start()

    def stop():
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    request.addfinalizer(stop)
    return cert, server.server_address[1]


def test_probe_of_a_plain_https_server_is_not_a_simulator(plain_https, lab_password):
    cert, port = plain_https
    host = dataclasses.replace(mguard_host(tls_ca_file=str(cert.cert)),
                               endpoints=MappingProxyType({"https": f"127.0.0.1:{port}"}))
    answers, detail = probe(host)
    assert answers is False
    assert "not as an otpatch simulator" in detail


def test_probe_of_a_server_whose_certificate_is_not_trusted_refuses(plain_https, make_lab):
    lab = make_lab()
    _, port = plain_https
    host = dataclasses.replace(lab.host(), endpoints=MappingProxyType(
        {"https": f"127.0.0.1:{port}"}))  # trusts the simulator's certificate, not this one
    answers, detail = probe(host)
    assert answers is False and detail.startswith("refused")


def test_device_unreachable_wraps_the_driver_error(lab_password, tmp_path):
    cert = write_pair(tmp_path, *self_signed("x", ("127.0.0.1",)))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    host = dataclasses.replace(mguard_host(tls_ca_file=str(cert.cert)),
                               endpoints=MappingProxyType({"https": f"127.0.0.1:{port}"}))
    with MguardDriver(host) as driver, pytest.raises(DeviceUnreachable) as err:
        driver.version()
    assert isinstance(err.value.__cause__, requests.exceptions.ConnectionError)
    assert f"https://127.0.0.1:{port}" in str(err.value)


def test_trusting_helper_points_at_the_real_port(make_lab):
    lab = make_lab()
    host = trusting(mguard_host(), lab.handle)
    assert host.endpoints["https"] != "127.0.0.1:0"
