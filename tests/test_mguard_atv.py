"""The mGuard profile format: .atv parsing, the facts a change record keeps, ECS containers."""
from __future__ import annotations

import gzip
import io
import tarfile

import pytest

from otpatch.modules.mguard import atv, profile
from otpatch.modules.mguard.simprofile import SIM_PSK, plant_profile
from tests.fixtures.mguard.support import FIXTURES

PLANT = FIXTURES / "plant-boundary.atv"
FIXTURE_PSK = "FIXTURE-PSK-never-print-91c2"


def ecs_container(cfg: bytes, members: tuple[str, ...] = ("aca/cfg", "aca/users", "aca/pass",
                                                          "aca/snmpd")) -> bytes:
    """An ECS container as the format notes describe it: gzip'ed tar, aca/cfg the profile."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name in members:
            data = cfg if name == "aca/cfg" else b"admin:$6$hash-stand-in\n"
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue())


@pytest.fixture(scope="module")
def plant() -> dict:
    return profile.summary(atv.parse(PLANT.read_text(encoding="utf-8"), PLANT.name))


def test_rule_counts_by_table(plant):
    assert plant["rules"] == {"total": 5, "incoming": 3, "outgoing": 1, "vpn": 1}


def test_vlans_and_syslog_settings(plant):
    assert plant["vlans"] == [10, 20]
    assert plant["syslog"] == {"enabled": True, "ip": "10.30.30.10", "port": 514}
    assert plant["atv_version"] == "10.3.1.default"


def test_ipsec_connections_with_their_tunnels_and_state(plant):
    athen, old = plant["tunnels"]
    assert (athen["name"], athen["rid"], athen["started"]) == ("Athen", "vpn-athen", True)
    assert athen["networks"] == [{"local": "10.10.10.0/24", "remote": "192.168.100.0/24"},
                                 {"local": "10.10.11.0/24", "remote": "192.168.101.0/24"}]
    # absent fields are reported absent, never guessed; VPN_ENABLED (before 8.1) is read
    assert (old["name"], old["started"], old["networks"]) == (
        None, False, [{"local": "10.10.10.0/24", "remote": None}])


def test_multi_line_strings_escapes_and_metadata_values():
    doc = atv.parse(PLANT.read_text(encoding="utf-8"))
    s7 = doc.settings["FW_INCOMING"].rows[1].settings["COMMENT"]
    assert s7 == 'S7 for the "old" panel,\nsee change C:\\2019\\114'
    assert atv.text_of(doc.settings["HTTPS_REMOTE_ENABLE"]) == "yes"
    assert doc.settings["HTTPS_REMOTE_ENABLE"].attrs["access"] == "must-not-overwrite"
    assert atv.text_of(doc.settings["SNMP_ENABLE_V1"]) == "no"
    assert ("comment", "a pragma that is not the version is kept, not interpreted") in \
        doc.pragmas


def test_crlf_reads_like_lf():
    text = PLANT.read_text(encoding="utf-8")
    assert atv.parse(text.replace("\n", "\r\n")) == atv.parse(text)


@pytest.mark.parametrize("doc", [plant_profile("10.3.1"),
                                 atv.parse(PLANT.read_text(encoding="utf-8"))],
                         ids=["simulator-plant", "fixture"])
def test_written_profiles_read_back_identical(doc):
    assert atv.parse(atv.dump(doc)) == doc


def test_the_simulators_plant_has_the_articles_boundary():
    facts = profile.summary(plant_profile("10.3.1"))
    assert facts["vlans"] == [10, 20, 30]
    assert facts["rules"]["total"] == 16
    misconfigured = [r["COMMENT"] for rows in profile.rules(plant_profile("10.3.1")).values()
                     for r in rows if "MISCONFIGURED" in (r["COMMENT"] or "")]
    assert len(misconfigured) == 5  # the article's four, UDP 44818 counted in both directions


@pytest.mark.parametrize("secret,doc", [
    (FIXTURE_PSK, lambda: atv.parse(PLANT.read_text(encoding="utf-8"))),
    (SIM_PSK, lambda: plant_profile("10.3.1")),
], ids=["fixture", "simulator-plant"])
def test_facts_and_reprs_never_carry_a_pre_shared_key(secret, doc):
    parsed = doc()
    assert secret not in repr(profile.summary(parsed))
    assert secret not in repr(parsed)
    assert secret not in repr(parsed.settings["VPN_CONNECTION"])


def test_ecs_container_is_sniffed_and_its_profile_read():
    data = ecs_container(PLANT.read_bytes())
    loaded = profile.load(data, "backup.tar.gz")
    assert loaded.container == "ecs"
    assert profile.rule_count(loaded.document) == 5
    assert loaded.atv == PLANT.read_bytes()


def test_ecs_container_without_a_profile_is_unreadable():
    data = ecs_container(b"", members=("aca/users",))
    with pytest.raises(profile.ProfileUnreadable, match="without aca/cfg"):
        profile.load(data, "backup.tar.gz")


def test_encrypted_p7e_container_is_reported_unreadable():
    with pytest.raises(profile.ProfileUnreadable, match="encrypted ECS container"):
        profile.load((FIXTURES / "encrypted.ecs.p7e").read_bytes(), "SIM.ecs.p7e")


def test_der_pkcs7_enveloped_data_is_sniffed_as_encrypted():
    der = bytes.fromhex("3080") + bytes.fromhex("06092a864886f70d010703") + b"\0" * 40
    assert profile.sniff(der) == "p7e"


# -- bad profiles: one clear line with line:col ---------------------------------------------

BAD = [
    ("no-version", 'A = "1"\n', 1, 1, "missing the mandatory #version pragma"),
    ("missing-equals", '#version 1.0.0.default\nA "1"\n', 2, 3, "expected '=' after A"),
    ("missing-value", "#version 1.0.0.default\nA =\n", 3, 1, "expected a value for A"),
    ("unterminated-string", '#version 1.0.0.default\nA = "open\nB = \n', 2, 5,
     "unterminated string"),
    ("unclosed-row", '#version 1.0.0.default\nT = {\n  {\n    A = "1"\n', 3, 3,
     "row opened here is not closed"),
    ("setting-twice", '#version 1.0.0.default\nA = "1"\nA = "2"\n', 3, 1,
     "setting A given twice (first at 2:1)"),
    ("stray-character", '#version 1.0.0.default\nA = "1" ;\n', 2, 9,
     "unexpected character ';'"),
    ("upper-name-in-table", '#version 1.0.0.default\nT = { B = "1" }\n', 2, 7,
     "expected '{' (a row of T) or '}'"),
    ("stray-close", '#version 1.0.0.default\n}\n', 2, 1, "expected a setting name"),
    ("not-utf8", b'#version 1.0.0.default\nA = "caf\xe9"\n', 2, 9, "not UTF-8 text"),
]


@pytest.mark.parametrize("text,line,col,message", [b[1:] for b in BAD],
                         ids=[b[0] for b in BAD])
def test_bad_profile_is_one_located_line(text, line, col, message):
    data = text if isinstance(text, bytes) else text.encode()
    with pytest.raises(atv.AtvError) as err:
        profile.load(data, "bad.atv")
    shown = str(err.value)
    assert "\n" not in shown
    assert shown.startswith(f"bad.atv:{line}:{col}: ")
    assert message in shown


def test_a_parse_error_never_shows_a_string_value():
    text = '#version 1.0.0.default\nAUTH_PSK = "top-secret-key" "second"\n'
    with pytest.raises(atv.AtvError) as err:
        atv.parse(text, "bad.atv")
    assert "top-secret-key" not in str(err.value) and "second" not in str(err.value)
