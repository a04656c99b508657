"""The sans-I/O SMTP core: ``SmtpSession`` turns each side's bytes into typed events."""
from __future__ import annotations

from pcapsmtp.smtp.events import (
    Anomaly, AnomalyCode, AuthExchange, Command, Event, ImplicitTls, MessageBody,
    PlaintextAfterStartTls, Reply, ReplyLine, StreamEnded, StreamGap,
)
from pcapsmtp.smtp.session import SessionConfig, SmtpSession

__all__ = ["SmtpSession", "SessionConfig", "Event", "ReplyLine", "Command", "Reply", "MessageBody",
           "AuthExchange", "ImplicitTls", "PlaintextAfterStartTls", "StreamGap", "StreamEnded",
           "Anomaly", "AnomalyCode"]
