"""Alert channels against real servers: email through aiosmtpd (STARTTLS with a throwaway
self-signed certificate, AUTH only after TLS), PagerDuty's Events API v2 and a Slack-compatible
webhook through a local HTTP receiver; channels per rule or for all; failures reported, never
raised, and never in the way of the evaluation."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from constellation.errors import PlanError
from constellation.monitoring.alerts import AlertChange
from constellation.monitoring.mail import Email
from constellation.monitoring.message import Delivery, dedup_key
from constellation.monitoring.notify import Notifier
from constellation.monitoring.pagerduty import PagerDuty
from constellation.monitoring.rounds import check_alerts
from constellation.plan import DEFAULT_ALERTS, load_plan
from constellation.plan.monitoring import EmailConfig, PagerDutyConfig
from constellation.queues.port import Outgoing
from tests.support.http import Request, local_server
from tests.support.monitoring import open_stub, write_plan
from tests.support.servers import free_port

DEAD = DEFAULT_ALERTS[-1]  # EmbedDeadLetters, critical, for 0s
FIRING = AlertChange(DEAD, "ok", "firing", 5.0, 1_700_000_000.0)
RESOLVED = AlertChange(DEAD, "firing", "ok", 0.0, 1_700_000_600.0)
PENDING = AlertChange(DEFAULT_ALERTS[0], "ok", "pending", 1500.0, 1_700_000_000.0)
USER, PASSWORD = "alerts@example.com", "smtp-secret-0123456789"
ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"


def body(change: AlertChange) -> dict[str, Any]:
    from constellation.monitoring.message import payload

    return payload(change, "notes", "test")


# a real SMTP server with STARTTLS -----------------------------------------------------------
def self_signed(folder: Path) -> tuple[Path, Path]:
    """A throwaway certificate for 127.0.0.1 and localhost, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@dataclass
class Mailbox:
    """What the SMTP server received: each message, whether TLS was on, who logged in."""

    port: int
    cert: Path
    messages: list[tuple[Envelope, bool]] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        self.messages.append((envelope, session.ssl is not None))
        return "250 OK"

    def authenticate(
        self, server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        self.logins.append((data.login.decode(), session.ssl is not None))
        ok = (data.login.decode(), data.password.decode()) == (USER, PASSWORD)
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535

    def config(self, **changes: Any) -> EmailConfig:
        settings: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": self.port,
            "username": USER,
            "password": PASSWORD,
            "sender": "constellation@example.com",
            "to": ["oncall@example.com", "team@example.com"],
            "ca_file": self.cert,
            **changes,
        }
        return EmailConfig.model_validate(settings)


@pytest.fixture
def mailbox(tmp_path: Path) -> Iterator[Mailbox]:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    box = Mailbox(free_port(), cert)
    controller = Controller(
        box,
        hostname="127.0.0.1",
        port=box.port,
        tls_context=context,
        require_starttls=True,
        authenticator=box.authenticate,
        auth_require_tls=True,
    )
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


def test_email_goes_over_starttls_and_logs_in_only_after_it(mailbox: Mailbox) -> None:
    email = Email(mailbox.config(), timeout=10)
    sent = email.send(FIRING, body(FIRING))
    assert sent == Delivery(
        "email", "EmbedDeadLetters", True, "sent to oncall@example.com, team@example.com"
    )
    assert email.send(PENDING, body(PENDING)) is None  # a pending alert mails nobody
    cleared = email.send(RESOLVED, body(RESOLVED))
    assert cleared is not None and cleared.ok
    assert mailbox.logins == [(USER, True), (USER, True)]  # each login inside TLS
    (first, tls1), (second, tls2) = mailbox.messages
    assert tls1 and tls2
    assert first.rcpt_tos == ["oncall@example.com", "team@example.com"]
    mail, later = (email_of(first), email_of(second))
    assert mail["Subject"] == "[FIRING] EmbedDeadLetters (critical) on notes/test"
    assert mail["X-Constellation-Alert"] == "constellation/notes/test/EmbedDeadLetters"
    text = mail.get_content()
    assert "dead_letter_depth = 5" in text and "state:     ok -> firing" in text
    assert later["Subject"] == "[RESOLVED] EmbedDeadLetters (critical) on notes/test"
    second_text = later.get_content()
    assert PASSWORD not in text + second_text


def test_email_failures_are_reported_without_the_password(mailbox: Mailbox) -> None:
    wrong = Email(mailbox.config(password="not-the-password-0123"), timeout=10)
    refused = wrong.send(FIRING, body(FIRING))
    assert refused is not None and not refused.ok
    assert refused.detail.startswith(f"not sent through 127.0.0.1:{mailbox.port}: 535")
    assert "not-the-password-0123" not in refused.detail
    untrusted = Email(mailbox.config(ca_file=None), timeout=10)
    failed = untrusted.send(FIRING, body(FIRING))
    assert failed is not None and not failed.ok and "CERTIFICATE_VERIFY_FAILED" in failed.detail
    closed = Email(mailbox.config(port=free_port()), timeout=5)
    down = closed.send(FIRING, body(FIRING))
    assert down is not None and not down.ok and "refused" in down.detail.lower()
    assert mailbox.messages == []


def test_a_server_without_starttls_gets_nothing_in_plain_text(tmp_path: Path) -> None:
    plain = Mailbox(free_port(), tmp_path / "none.pem")
    controller = Controller(plain, hostname="127.0.0.1", port=plain.port)
    controller.start()
    try:
        email = Email(plain.config(ca_file=None), timeout=10)
        delivery = email.send(FIRING, body(FIRING))
    finally:
        controller.stop()
    assert delivery is not None and not delivery.ok
    assert "offers no STARTTLS: nothing was sent in plain text" in delivery.detail
    assert plain.messages == [] and plain.logins == []


def email_of(envelope: Envelope) -> EmailMessage:
    raw = envelope.original_content or b""
    parsed = message_from_bytes(raw, policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


# PagerDuty's Events API v2 through a local receiver ---------------------------------------------
def accept(request: Request) -> tuple[int, Any]:
    event = request.json()
    return 202, {"status": "success", "message": "Event processed", "dedup_key": event["dedup_key"]}


def pager(url: str) -> PagerDuty:
    return PagerDuty(PagerDutyConfig.model_validate({"routing_key": ROUTING_KEY, "url": url}))


def test_pagerduty_triggers_then_resolves_one_incident_per_alert() -> None:
    with local_server(accept) as server:
        pd = pager(server.url + "/v2/enqueue")
        triggered = pd.send(FIRING, body(FIRING))
        assert pd.send(PENDING, body(PENDING)) is None  # pending pages nobody
        resolved = pd.send(RESOLVED, body(RESOLVED))
    key = dedup_key("notes", "test", "EmbedDeadLetters")
    assert triggered == Delivery("pagerduty", "EmbedDeadLetters", True, f"trigger accepted ({key})")
    assert resolved is not None and resolved.ok
    trigger, resolve = (r.json() for r in server.requests)
    assert {r.path for r in server.requests} == {"/v2/enqueue"}
    assert server.requests[0].headers["Content-Type"] == "application/json"
    assert trigger["routing_key"] == ROUTING_KEY and trigger["event_action"] == "trigger"
    assert trigger["dedup_key"] == resolve["dedup_key"] == key
    sent = trigger["payload"]
    assert sent["summary"].startswith("[FIRING] EmbedDeadLetters (critical) on notes/test")
    assert (sent["severity"], sent["source"], sent["class"]) == (
        "critical",
        "constellation notes/test",
        "dead_letter_depth",
    )
    assert sent["timestamp"] == "2023-11-14T22:13:20+00:00"
    assert sent["custom_details"]["value"] == 5.0
    assert resolve == {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": key}


def test_pagerduty_refusals_are_reported_without_the_routing_key() -> None:
    def invalid(request: Request) -> tuple[int, Any]:
        return 400, {
            "status": "invalid event",
            "message": "Event object is invalid",
            "errors": [f"Length of 'routing_key' is incorrect ({ROUTING_KEY})"],
        }

    with local_server(invalid) as server:
        refused = pager(server.url).send(FIRING, body(FIRING))
    assert refused is not None and not refused.ok
    assert refused.detail.startswith("trigger refused: HTTP 400 (Event object is invalid; Length")
    assert ROUTING_KEY not in refused.detail
    with local_server(lambda r: (429, {"status": "throttle event"})) as server:
        throttled = pager(server.url).send(FIRING, body(FIRING))
    assert throttled is not None and throttled.detail == "trigger refused: HTTP 429"
    down = pager(f"http://127.0.0.1:{free_port()}/v2/enqueue").send(RESOLVED, body(RESOLVED))
    assert down is not None and not down.ok and down.detail.startswith("resolve not sent:")


# the plan: channels for all or per rule, keys from the environment ---------------------------
def channel_plan(folder: Path, mailbox: Mailbox, receiver: str, rules: str = "") -> Path:
    return write_plan(
        folder,
        f"  webhook_url: {receiver}/slack\n"
        f"  pagerduty: {{routing_key: '${{TEST_PD_KEY}}', url: '{receiver}/v2/enqueue'}}\n"
        f"  email: {{host: 127.0.0.1, port: {mailbox.port}, username: '{USER}',\n"
        f"    password: '${{TEST_SMTP_PASSWORD}}', sender: c@example.com, to: [o@example.com],\n"
        f"    ca_file: {mailbox.cert}}}\n" + rules,
    )


def test_every_channel_for_all_rules_or_only_those_a_rule_names(
    mailbox: Mailbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_PD_KEY", ROUTING_KEY)
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)

    def answer(request: Request) -> tuple[int, Any]:
        return accept(request) if request.path == "/v2/enqueue" else (200, {"ok": True})

    with local_server(answer) as server:
        plan = load_plan(
            channel_plan(
                tmp_path,
                mailbox,
                server.url,
                "  alerts:\n"
                "    - {name: Deep, metric: queue_depth, threshold: 10}\n"
                "    - {name: Dead, metric: dead_letter_depth, threshold: 0, severity: critical,\n"
                "       channels: [pagerduty]}\n",
            )
        )
        assert plan.monitoring.channels() == ["webhook", "pagerduty", "email"]
        assert ROUTING_KEY not in repr(plan) and PASSWORD not in repr(plan)
        notifier = Notifier.from_plan(plan)
        deep, dead = plan.monitoring.alerts
        everywhere = notifier.notify(AlertChange(deep, "ok", "firing", 20.0, 1.0))
        only_pager = notifier.notify(AlertChange(dead, "ok", "firing", 3.0, 1.0))
    assert [(d.channel, d.ok) for d in everywhere] == [
        ("webhook", True),
        ("pagerduty", True),
        ("email", True),
    ]
    assert [(d.channel, d.ok) for d in only_pager] == [("pagerduty", True)]
    assert [r.path for r in server.requests] == ["/slack", "/v2/enqueue", "/v2/enqueue"]
    assert len(mailbox.messages) == 1


def test_a_rule_naming_a_channel_the_plan_lacks_is_a_plan_error(tmp_path: Path) -> None:
    path = write_plan(
        tmp_path,
        "  alerts:\n    - {name: Dead, metric: dead_letter_depth, threshold: 0,"
        " channels: [pagerduty]}\n",
    )
    with pytest.raises(PlanError) as error:
        load_plan(path)
    assert "alerts[0] (Dead): channel(s) pagerduty not configured in monitoring" in str(error.value)
    empty = write_plan(tmp_path, "  pagerduty: {routing_key: '${TEST_PD_UNSET:-}'}\n")
    with pytest.raises(PlanError, match="routing_key: empty: set the variable"):
        load_plan(empty)


def test_failing_channels_never_stop_the_evaluation(
    mailbox: Mailbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_PD_KEY", ROUTING_KEY)
    monkeypatch.setenv("TEST_SMTP_PASSWORD", "wrong-password-0123")
    closed = f"http://127.0.0.1:{free_port()}"
    plan, services = open_stub(channel_plan(tmp_path, mailbox, closed))
    assert services.dead_letter.send_batch([Outgoing("{oops")]).ok  # one dead letter
    report = check_alerts(plan, services, now=1_700_000_000.0)  # type: ignore[arg-type]
    assert [s.name for s in report.firing] == ["EmbedDeadLetters"]
    assert sorted((d.channel, d.ok) for d in report.deliveries) == [
        ("email", False),
        ("pagerduty", False),
        ("webhook", False),
    ]
    # the state was kept: the next round sees it firing already and notifies nothing again
    again = check_alerts(plan, services, now=1_700_000_060.0)  # type: ignore[arg-type]
    assert again.changes == [] and [s.name for s in again.firing] == ["EmbedDeadLetters"]
