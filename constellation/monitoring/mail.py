"""Alerts by email over SMTP: one message when an alert fires and one when it clears.

``starttls`` (the default, port 587) says hello in plain text and switches to TLS before any
credential or alert is sent; ``tls`` (port 465) speaks TLS from the start; ``none`` is for a
relay on the same machine and never sends a password. The server's certificate is checked
against the system's CAs (and ``ca_file``, for a private CA). The username and password come
from the plan, whose values come from the environment; neither ever appears in a message.
Failures become a failed :class:`Delivery`, never an exception.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING, Any

from constellation.masking import masked
from constellation.monitoring.message import Delivery, dedup_key

if TYPE_CHECKING:
    from constellation.monitoring.alerts import AlertChange
    from constellation.plan.monitoring import EmailConfig

CHANNEL = "email"


def message(body: dict[str, Any], sender: str, to: list[str]) -> EmailMessage | None:
    """The email for an alert that fired or cleared (None for a pending alert)."""
    if not (body["state"] == "firing" or body["resolved"]):
        return None
    mail = EmailMessage()
    headline = "RESOLVED" if body["resolved"] else "FIRING"
    mail["Subject"] = (
        f"[{headline}] {body['alert']} ({body['severity']}) on {body['plan']}/{body['environment']}"
    )
    mail["From"] = sender
    mail["To"] = ", ".join(to)
    mail["Date"] = formatdate(localtime=False)
    mail["Message-ID"] = make_msgid(domain="constellation.invalid")
    # mail readers thread the firing and the resolved message of one alert together
    mail["X-Constellation-Alert"] = dedup_key(body["plan"], body["environment"], body["alert"])
    value = "no data" if body["value"] is None else f"{body['value']:g}"
    lines = [
        body["text"],
        "",
        f"alert:     {body['alert']} ({body['severity']})",
        f"condition: {body['metric']} {body['op']} {body['threshold']:g} for {body['for_seconds']:g}s",
        f"value:     {value}",
        f"state:     {body['previous']} -> {body['state']}",
        f"at:        {body['at']}",
        f"plan:      {body['plan']} ({body['environment']})",
        "",
        "See `constellation stats` and `constellation doctor` for the figures and what to do.",
    ]
    mail.set_content("\n".join(lines))
    return mail


class Email:
    """Sends alert changes to the plan's recipients through one SMTP server."""

    channel = CHANNEL

    def __init__(self, config: EmailConfig, *, timeout: float = 10.0) -> None:
        self.config = config
        self.timeout = timeout
        self._secrets = tuple(
            s.get_secret_value() for s in (config.username, config.password) if s is not None
        )

    def send(self, change: AlertChange, body: dict[str, Any]) -> Delivery | None:
        """One message (None for a change that mails nobody)."""
        c = self.config
        mail = message(body, c.sender, c.to)
        if mail is None:
            return None
        try:
            with self._connect() as smtp:
                if c.username is not None and c.password is not None:
                    smtp.login(c.username.get_secret_value(), c.password.get_secret_value())
                refused = smtp.send_message(mail)
        except (OSError, smtplib.SMTPException, ssl.SSLError) as exc:
            detail = masked(f"not sent through {c.host}:{c.port}: {_said(exc)}", self._secrets)
            return Delivery(CHANNEL, body["alert"], False, detail)
        if refused:
            return Delivery(
                CHANNEL, body["alert"], False, f"refused for {', '.join(sorted(refused))}"
            )
        return Delivery(CHANNEL, body["alert"], True, f"sent to {', '.join(c.to)}")

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        context = ssl.create_default_context(cafile=str(c.ca_file) if c.ca_file else None)
        if c.security == "tls":
            return smtplib.SMTP_SSL(c.host, c.port, timeout=self.timeout, context=context)
        smtp = smtplib.SMTP(c.host, c.port, timeout=self.timeout)
        try:
            if c.security == "starttls":
                smtp.ehlo()
                if not smtp.has_extn("starttls"):
                    raise smtplib.SMTPNotSupportedError(
                        "the server offers no STARTTLS: nothing was sent in plain text "
                        "(security: tls for port 465, or another server)"
                    )
                smtp.starttls(context=context)
                smtp.ehlo()
        except BaseException:
            smtp.close()
            raise
        return smtp


def _said(exc: BaseException) -> str:
    """An SMTP error in one line: its code and the server's words."""
    if isinstance(exc, smtplib.SMTPResponseException):
        text = (
            exc.smtp_error.decode(errors="replace")
            if isinstance(exc.smtp_error, bytes)
            else exc.smtp_error
        )
        return f"{exc.smtp_code} {text}".strip()
    return str(exc) or type(exc).__name__
