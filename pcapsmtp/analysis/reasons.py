"""The catalogue of reason and finding codes: who is blamed, what a strict client does, and
what the admin should ask of whom. docs/verdicts.md is written from this table."""
from __future__ import annotations

from dataclasses import dataclass

#: the sides a verdict or a finding can blame (capture problems and 'none' are not blame)
BLAMED = frozenset({"client", "server", "middlebox"})

__all__ = ["ReasonInfo", "REASONS", "FINDINGS", "TLSRPT_RESULT", "GIVE_UP_REASONS"]


@dataclass(frozen=True, slots=True)
class ReasonInfo:
    outcome: str        #: the usual outcome
    caused_by: str      #: the usual side (tls-handshake-failed and tls-fallback vary)
    title: str
    client_does: str    #: what a strict, RFC-following client does with this
    remedy: str         #: what the admin should ask of whom


REASONS: dict[str, ReasonInfo] = {
    "tls-established": ReasonInfo(
        "tls", "none", "STARTTLS succeeded",
        "The client upgraded the connection and the mail went through TLS.",
        "Nothing to do."),
    "implicit-tls": ReasonInfo(
        "tls", "none", "TLS from the first byte (SMTPS)",
        "The client spoke TLS from its first byte; nothing went in the clear.",
        "Nothing to do."),
    "tls-start-not-captured": ReasonInfo(
        "tls", "none", "TLS already under way when the capture started",
        "The capture starts inside an established TLS session in both directions: how TLS "
        "began (STARTTLS or TLS from the first byte) is not in the capture, but the "
        "conversation is encrypted.",
        "Nothing to do for TLS; capture from the start of the connection to see the "
        "handshake."),
    "tls-decrypted": ReasonInfo(
        "tls", "none", "capture taken behind a TLS terminator",
        "After the 220 the dialogue goes on as readable SMTP: the capture point sees the "
        "decrypted side of a TLS proxy or terminator, not a failed upgrade.",
        "Capture in front of the TLS terminator to see the handshake itself."),
    "client-did-not-request": ReasonInfo(
        "plaintext", "client", "client ignored a valid STARTTLS offer",
        "A client that reads the reply by the RFC sees STARTTLS and should have used it.",
        "Ask the sending MTA's admin to enable opportunistic TLS (Postfix smtp_tls_security_level"
        " = may, Exim tls_try_verify_hosts / hosts_try_tls, ...)."),
    "client-used-helo": ReasonInfo(
        "plaintext", "client", "client greeted with HELO",
        "HELO has no extensions, so the client cannot learn that STARTTLS is offered.",
        "Ask the sending side to greet with EHLO (RFC 5321 4.1.1.1)."),
    "starttls-not-offered": ReasonInfo(
        "plaintext", "server", "server did not offer STARTTLS",
        "The reply is well formed and has no STARTTLS line, so no client can ask for TLS. A "
        "middlebox that strips the line without a trace looks exactly the same from here.",
        "Ask the receiving server's admin to enable STARTTLS; if they say it is on, capture in "
        "front of their firewall too and run `pcapsmtp diff`."),
    "starttls-misplaced": ReasonInfo(
        "plaintext", "server", "STARTTLS offered where strict clients cannot see it",
        "A client that follows the RFC 5321 4.1.1.1 grammar reads the first EHLO line as the "
        "server's domain (or stops at the premature end of the reply, or ignores a line with "
        "another code) and never sees STARTTLS, so it delivers in plaintext.",
        "Ask the receiving server's admin to send the domain on the first EHLO line and "
        "STARTTLS on a later `250-`/`250 ` line of the same reply."),
    "ehlo-rejected": ReasonInfo(
        "plaintext", "server", "EHLO refused, HELO fallback has no extensions",
        "After a refused EHLO the client falls back to HELO, which cannot negotiate STARTTLS.",
        "Ask the receiving server's admin why EHLO is refused (often an old server or an "
        "inspecting firewall)."),
    "starttls-refused": ReasonInfo(
        "plaintext", "server", "STARTTLS refused",
        "The server answered STARTTLS with an error; opportunistic clients (Postfix 'may', Exim's "
        "default) go on in plaintext on the same connection.",
        "Ask the receiving server's admin to fix its TLS setup (certificate, key, TLS library); "
        "454 means a temporary local problem."),
    "starttls-masked": ReasonInfo(
        "plaintext", "middlebox", "a middlebox rewrote STARTTLS",
        "The keyword reached the client as XXXXXXXA (or similar), the client's STARTTLS reached "
        "the server as XXXXXXXX, or a banner masked with asterisks made the client take the "
        "server for a PIX firewall and greet with HELO (Postfix): no client negotiates TLS "
        "through the box.",
        "Ask the network team to turn off ESMTP inspection's STARTTLS masking (Cisco ASA/PIX: "
        "`no inspect esmtp` or allow-tls in the ESMTP policy map)."),
    "starttls-stripped": ReasonInfo(
        "plaintext", "middlebox", "a middlebox removed STARTTLS (from `diff`)",
        "The server offered STARTTLS on its side of the box; the client's side never saw it.",
        "Ask the network team which box sits between the two capture points and turn off its "
        "SMTP inspection or STARTTLS stripping."),
    "tls-handshake-failed": ReasonInfo(
        "aborted", "server", "TLS handshake failed after 220",
        "The handshake ended in an alert, a reset or a close; many MTAs then retry the same "
        "server in plaintext.",
        "Ask the side that ended the handshake why (the alert names it: protocol version, "
        "certificate, cipher)."),
    "tls-not-started": ReasonInfo(
        "aborted", "client", "220 given but no TLS followed",
        "After the server's 220 the peer sent bytes that are neither TLS nor SMTP, or closed.",
        "Ask the side that broke off why it did not start the handshake."),
    "tls-fallback": ReasonInfo(
        "plaintext", "server", "plaintext retry after a failed TLS attempt",
        "After a failed handshake or refusal on an earlier connection, the sender came back "
        "and skipped STARTTLS although the server offered it (or greeted with HELO, which "
        "cannot ask for it): Postfix, Exim and OpenSMTPD do this. When the server offered "
        "nothing the second time, the verdict stays starttls-not-offered.",
        "Fix the earlier failure (see the referenced stream); require TLS for this destination "
        "if plaintext is not acceptable."),
    "implicit-tls-mismatch": ReasonInfo(
        "aborted", "server", "TLS client met a plaintext server",
        "The client opened with a TLS ClientHello (SMTPS) but the server answered in plaintext "
        "SMTP; the connection cannot continue.",
        "Point the client at the server's SMTPS port, or use STARTTLS on port 25/587."),
    "greeting-refused": ReasonInfo(
        "aborted", "server", "server refused the connection in its greeting",
        "The server's first reply was a refusal (554/421), or it closed or reset the connection "
        "without a greeting; no mail could be sent.",
        "Ask the receiving server's admin why the sender is refused."),
    "no-mail-transaction": ReasonInfo(
        "aborted", "none", "conversation ended without mail",
        "The client left (QUIT, close or reset) before any mail transaction and without sending "
        "credentials, after a valid STARTTLS offer or before asking for anything (a probe, a "
        "monitoring check, a scanner that closes before the banner).",
        "Nothing went in plaintext; nothing to do for TLS."),
    "incomplete": ReasonInfo(
        "incomplete", "unknown", "the capture does not show enough",
        "The capture starts too late, ends too early, or lost bytes of the decisive exchange.",
        "Capture again from the start of the connection (`tcpdump -s 0`), in both directions."),
}

#: finding code -> (default side, RFC reference, short title)
FINDINGS: dict[str, tuple[str, str, str]] = {
    "ehlo-keyword-as-domain": ("server", "RFC 5321 4.1.1.1", "keyword in the domain slot of the EHLO reply"),
    "ehlo-premature-end": ("server", "RFC 5321 4.2.1", "EHLO reply ends before its last line"),
    "ehlo-mixed-codes": ("server", "RFC 5321 4.2.1", "EHLO reply lines with different codes"),
    "ehlo-bare-lf": ("server", "RFC 5321 2.3.8", "EHLO reply line ends in bare LF"),
    "ehlo-line-too-long": ("server", "RFC 5321 4.5.3.1.5", "EHLO reply line over 512 octets"),
    "ehlo-bad-keyword": ("server", "RFC 5321 4.1.1.1", "EHLO line without a valid keyword"),
    "ehlo-starttls-parameter": ("server", "RFC 3207 4", "STARTTLS keyword with a parameter"),
    "ehlo-legacy-keyword": ("server", "RFC 5321 4.1.1.1",
                            "legacy X=Y keyword form such as AUTH=LOGIN (informational)"),
    "ehlo-masked-keyword": ("middlebox", "RFC 5321 4.1.1.1", "masked EHLO keyword (low confidence)"),
    "starttls-with-parameter": ("client", "RFC 3207 4", "STARTTLS sent with a parameter"),
    "starttls-not-advertised-but-used": ("client", "RFC 3207 4", "STARTTLS used though not offered"),
    "starttls-masked": ("middlebox", "RFC 3207 4", "STARTTLS keyword masked by a middlebox"),
    "banner-masked": ("middlebox", "RFC 5321 4.3.1", "banner masked with asterisks"),
    "reply-out-of-step": ("server", "RFC 5321 4.2", "a reply no command awaited: later replies one behind"),
    "starttls-command-injection": ("client", "RFC 3207 4.2", "plaintext after STARTTLS before the 220"),
    "starttls-response-injection": ("server", "RFC 3207 4.2", "plaintext after the 220 to STARTTLS"),
    "starttls-offered-again": ("server", "RFC 3207 4.2", "STARTTLS offered again after TLS"),
    "plaintext-after-starttls": ("capture", "RFC 3207 4", "readable bytes where TLS was expected"),
    "implicit-tls-plaintext-reply": ("server", "RFC 8314 3.3", "ClientHello answered in plaintext"),
    "tls-alert": ("server", "RFC 8446 6", "TLS alert during the handshake"),
    "tls-certificate": ("server", "RFC 8460 4.3", "certificate problem visible in the handshake"),
    "tcp-gap": ("capture", "", "bytes missing from the capture"),
    "tcp-overlap-conflict": ("capture", "", "retransmission with different bytes"),
    "midstream": ("capture", "", "capture starts in the middle of the conversation"),
    "one-sided": ("capture", "", "only one direction captured"),
    "limit-reached": ("capture", "", "a size limit of the parser was reached"),
    "capture-loss": ("capture", "", "the capture dropped packets while the conversation was open"),
}

#: reasons of an EHLO exchange whose defect a client that requires TLS (msmtp ``tls on``, dma,
#: s-nail ``smtp-use-starttls``, an MTA with a TLS-required policy, Cisco ESA "TLS Required")
#: gives up on: the outcome is then ``aborted`` with the same blame and reason.
GIVE_UP_REASONS = ("starttls-not-offered", "starttls-misplaced", "starttls-masked", "ehlo-rejected")

#: reason -> RFC 8460 result type, where one applies.
TLSRPT_RESULT: dict[str, str] = {
    "starttls-not-offered": "starttls-not-supported",
    "starttls-misplaced": "starttls-not-supported",
    "starttls-masked": "starttls-not-supported",
    "starttls-stripped": "starttls-not-supported",
    "starttls-refused": "validation-failure",
    "ehlo-rejected": "starttls-not-supported",
    "tls-handshake-failed": "validation-failure",
    "tls-not-started": "validation-failure",
    "tls-fallback": "validation-failure",
    "implicit-tls-mismatch": "validation-failure",
}
