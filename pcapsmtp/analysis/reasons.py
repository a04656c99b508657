"""The catalogue of reason and finding codes: who is blamed, what a strict client does, and
what the admin should ask of whom. docs/verdicts.md is written from this table."""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

#: the sides a verdict or a finding can blame (capture problems and 'none' are not blame)
BLAMED = frozenset({"client", "server", "middlebox"})

__all__ = ["ReasonInfo", "ReasonCase", "FindingInfo", "REASONS", "REASON_CASES", "FINDINGS", "TLSRPT_RESULT",
           "TLSRPT_CASE_RESULT", "GIVE_UP_REASONS", "tlsrpt_result"]


@dataclass(frozen=True, slots=True, eq=False, repr=False)
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
        "without a greeting, or never sent one until the client gave up; no mail could be sent.",
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

@dataclass(frozen=True, slots=True, eq=False, repr=False)
class ReasonCase:
    """A case of a reason whose cause, and so whose remedy, differs from the reason's usual
    one: the verdict names it, and the conversation's ``explanation`` is the case's."""

    title: str
    finding: str        #: the finding every conversation of this case carries
    client_does: str
    remedy: str
    caused_by: str      #: the side the case blames


#: (reason, case) -> the case's texts
REASON_CASES: dict[tuple[str, str], ReasonCase] = {
    ("starttls-refused", "stray-answer"): ReasonCase(
        "STARTTLS answered by a stray line", "reply-out-of-step",
        "The server sent a reply no command awaited before STARTTLS (the rest of an EHLO reply "
        "that ended early, a second greeting), so the client read it as the answer to STARTTLS: "
        "it is not 220, so to the client the server refused. Opportunistic clients (Postfix "
        "'may') go on in plaintext, others (Go net/smtp) give up; the server's own answer to "
        "STARTTLS came one reply late and was never read as the answer.",
        "Ask the receiving server's admin (or whoever runs the proxy or load balancer in front of "
        "it) to send exactly one reply per command: the reply the `reply-out-of-step` finding "
        "points at ended early or came twice. Whether TLS itself works shows in the server's own "
        "answer to STARTTLS, which the verdict's detail names (a 220 there: it does).", "server"),
    ("implicit-tls-mismatch", "client-tls-port"): ReasonCase(
        "a TLS client on a STARTTLS port", "implicit-tls-on-starttls-port",
        "The client opened with a TLS ClientHello on port 25, 587 or 2525, where SMTP starts with "
        "the server's plaintext greeting and TLS comes with STARTTLS: the server greeted in "
        "plaintext, as it should there, and the client's TLS library gave up (\"wrong version "
        "number\"). Mail clients and scripts set to \"SSL/TLS\" with port 587 do this.",
        "Configure the client for STARTTLS on this port, or for implicit TLS on port 465 (RFC "
        "8314 3.3); nothing to change on the server.", "client"),
    ("starttls-refused", "server-closed"): ReasonCase(
        "the server refused STARTTLS and closed the connection", "server-closed",
        "The server answered STARTTLS with an error and then closed (or reset) the connection "
        "itself. A 421 says exactly that: the server is closing the transmission channel (RFC "
        "5321 3.8), as a server does that is shutting down, overloaded or refusing this client; "
        "after another code (454, a 5xx) RFC 5321 3.8 does not let a server close, but this one "
        "did. RFC 3207 lets a client whose STARTTLS got an error go on without TLS or give up; "
        "here the server's close left it no way on over this connection, only a new "
        "connection: whether it tried again, and in plaintext, is another conversation (a "
        "`tls-fallback` verdict there when it skipped STARTTLS).",
        "Ask the receiving server's admin why it refuses STARTTLS and then ends the session (the "
        "detail names the reply): a 421 comes from a server that is shutting down, or that "
        "refuses sessions (a connection or rate limit, a policy on the sending host); another "
        "code followed by a close is often a TLS setup that fails (certificate, key, TLS library) "
        "in a server process that then exits.", "server"),
    ("starttls-refused", "no-answer"): ReasonCase(
        "STARTTLS never answered", "no-answer",
        "The server (or a firewall, IPS or DPI box in front of it that swallows the command) sent "
        "nothing after STARTTLS, neither 220 nor an error, until the client gave up waiting: it "
        "closed, sent QUIT, or (swaks --tls-optional) went on in plaintext on the same "
        "connection. Opportunistic MTAs (Postfix 'may') then retry the server, in plaintext "
        "when they can.",
        "Ask the receiving server's admin why STARTTLS hangs (a TLS setup that blocks, a server "
        "under load), and the network team whether a box in front of it drops the command: "
        "capture in front of the server too and run `pcapsmtp diff`.", "server"),
    ("ehlo-rejected", "no-answer"): ReasonCase(
        "EHLO never answered", "no-answer",
        "The server (or a box in front of it) sent no answer to EHLO, or stopped in the middle "
        "of it (or ended it with a line with no space after its code, '250' alone or '250X', which "
        "a client that follows the EHLO grammar does not take for the end), until the client gave "
        "up waiting (Postfix 'timed out while sending EHLO' after "
        "smtp_helo_timeout, 300 s; Exim's command timeout): a client reads the extension list "
        "only once the reply ends, so it never saw STARTTLS. No mail was sent on this "
        "connection; an MTA retries later.",
        "Ask the receiving server's admin why its EHLO reply hangs (a DNS lookup of the client "
        "that blocks, a policy service or milter that does not answer, a server under load), "
        "and the network team whether a box in front of the server holds the reply: capture in "
        "front of the server too and run `pcapsmtp diff`.", "server"),
    ("ehlo-rejected", "answer-lost"): ReasonCase(
        "the EHLO reply never reached the client", "answer-not-received",
        "The server answered EHLO (in a capture taken on the server's side of the path), but the "
        "client never acknowledged the reply: its ACKs stayed before it, or the server sent it "
        "again with nothing of the client coming back. The client never saw the extension list, "
        "nor STARTTLS in it: it waited until it gave up (it closed, or sent QUIT), or the server's "
        "command timeout, waiting for a command that could not come, ended the session first "
        "(Postfix's '421 4.4.2 ... Error: timeout exceeded' after smtpd_timeout, 300 s, or 10 s "
        "under stress). Neither end broke off: a firewall, IPS or DPI box on the path dropped the "
        "server's reply (an ESMTP inspection that holds or drops what it cannot parse). No mail "
        "was sent on this connection; an MTA retries later.",
        "Ask the network team which firewall, IPS or DPI box on the path drops the server's EHLO "
        "reply (an ESMTP inspection policy), and to let it through; neither end's admin has "
        "anything to fix. Capturing on the client's side too and running `pcapsmtp diff` shows "
        "where the reply vanishes.", "middlebox"),
    ("greeting-refused", "no-answer"): ReasonCase(
        "the server never sent its greeting", "no-answer",
        "The server accepted the TCP connection and then sent nothing, no 220 and no close, "
        "until the client gave up waiting half a minute or more (Postfix 'timed out while "
        "receiving the initial server greeting' after smtp_helo_timeout, 300 s): a server too "
        "loaded to start a session, a proxy or load balancer in front of it that accepts "
        "connections its back end never takes, or a tarpit. No mail could be sent.",
        "Ask the receiving server's admin why it accepts connections without greeting them "
        "(its process limits, a hung SMTP service, a deliberate delay longer than clients "
        "wait), and whoever runs a load balancer or firewall in front of it whether that "
        "accepts on the server's behalf.", "server"),
    ("tls-handshake-failed", "server-silent"): ReasonCase(
        "the server never answered the ClientHello", "no-answer",
        "The server answered STARTTLS with 220, the client sent its ClientHello, and nothing came "
        "back (no ServerHello, no alert, no close) until the client gave up waiting (it closed, "
        "reset, or sent an alert of its own); or, later in the handshake, nothing came back after "
        "the client's Finished, which the server acknowledged (a server stuck checking the "
        "client's certificate, say); or the server stopped in the middle of its answer (no "
        "ServerHelloDone; in TLS 1.3 no Finished), the client having acknowledged what came, "
        "or never answered the second ClientHello its own HelloRetryRequest asked for: "
        "a server whose TLS stack hangs, or a firewall, IPS or DPI box in front of it that lets "
        "SMTP through and black-holes TLS. Opportunistic MTAs (Postfix, Exim, OpenSMTPD) then "
        "retry the server in plaintext.",
        "Ask the receiving server's admin whether its TLS library hangs on this ClientHello (or "
        "on the client's Finished), and "
        "the network team whether a box in front of it drops TLS after STARTTLS (an IPS or DPI "
        "policy, an MTU problem that drops the larger TLS packets): capture in front of the "
        "server too and run `pcapsmtp diff`.", "server"),
    ("tls-handshake-failed", "client-silent"): ReasonCase(
        "the client never answered the server's whole answer", "client-silent",
        "The server answered the ClientHello whole (ServerHello to ServerHelloDone, or to its "
        "Finished in TLS 1.3; or a HelloRetryRequest, which asks for a second ClientHello), the "
        "client's TCP acknowledged every byte of it, and the client sent nothing more, no alert "
        "either, until the server's handshake timeout closed the connection or, a second or more "
        "after the answer, the client closed or reset it itself: a client "
        "whose TLS library or certificate check hangs (a CRL or OCSP fetch that a firewall drops, "
        "a hardware key that does not answer) or that ran out of a resource. The receiving "
        "server waited as it should. Opportunistic MTAs then retry in plaintext.",
        "Ask the sending side's admin why its TLS client stalls after the server's answer: its "
        "logs at that time (a certificate check, a CRL or OCSP fetch, a hardware key), and "
        "whether the same happens with another server.", "client"),
    ("starttls-refused", "command-lost"): ReasonCase(
        "STARTTLS never reached the server", "request-not-received",
        "The client sent STARTTLS and waited; the server's acknowledgements after it never "
        "covered the command, so it never arrived: TCP acknowledges every byte that reaches the "
        "server whatever its SMTP software does (a server that hangs still acknowledges). A "
        "firewall, IPS or DPI box on the path dropped it (some ESMTP inspections drop STARTTLS "
        "rather than mask it), until the client gave up waiting; opportunistic clients then "
        "go on or retry in plaintext. The command may be missing from the capture too (taken "
        "behind the box): a hole of exactly its length where the client's next command after a "
        "valid offer goes, which the server's acknowledgements a second or more after the "
        "client's next segment never covered; or which the server never acknowledged until its "
        "command timeout, ten seconds or more after the offer, ended the session (Postfix's "
        "'421 4.4.2 ... Error: timeout exceeded' after smtpd_timeout, Exim's '421 ...: SMTP command "
        "timeout - closing connection', or a close): the server waited for a command that never "
        "came, and the client read that 421 or close as the end. A 421 whose acknowledgement "
        "covers the command instead is the server's answer to it (starttls-refused, the "
        "server's).",
        "Ask the network team which firewall, IPS or DPI box on the path drops the STARTTLS "
        "command (an ESMTP inspection policy), and to let it through; capturing in front of the "
        "server too and running `pcapsmtp diff` shows where it vanishes.", "middlebox"),
    ("tls-handshake-failed", "hello-lost"): ReasonCase(
        "the ClientHello never reached the server", "request-not-received",
        "The server answered STARTTLS with 220 (or, on the SMTPS port 465, accepted the "
        "connection) and the client sent its ClientHello, but the "
        "server's acknowledgements after it never covered it (or covered only its first small "
        "segment), until the client gave up waiting: the ClientHello never arrived whole. TCP "
        "acknowledges every byte that reaches the server, whatever its TLS library does, so "
        "this is no server hang but the path: a path MTU black hole (a ClientHello with large "
        "key shares needs full-size packets, and a link with a smaller MTU drops them while a "
        "firewall blocks the ICMP that would say so), or a firewall, IPS or DPI box that drops "
        "TLS after STARTTLS. Opportunistic MTAs then retry the server in plaintext. The "
        "ClientHello may be missing from the capture too (taken behind the box): a hole where "
        "the client's first bytes after the 220 go (on port 465: the client's first bytes, before "
        "anything of the server, which waits for them), which the server's acknowledgements a "
        "second or more after the client's next segment never covered, or which the server never "
        "acknowledged until its handshake timeout, ten seconds or more after the 220 (or the "
        "connection's start), closed the connection (Postfix closes without a word; Exim, reading "
        "plaintext again, sends its command timeout's 421): the server waited for a ClientHello "
        "that never came, which is what an SMTPS server does without one; and a client that closed "
        "sooner than a second after it is no cause when the server's acknowledgements a second or "
        "more later still do not cover it (its TCP goes on resending it after the close).",
        "Ask the network team on the path between the two (both sides' firewalls, VPNs and "
        "tunnels) to let ICMP 'fragmentation needed' / 'packet too big' through, or to clamp "
        "the TCP MSS, and whether a box drops TLS after STARTTLS; capturing in front of the "
        "server too and running `pcapsmtp diff` shows where the bytes vanish.", "middlebox"),
    ("tls-handshake-failed", "answer-lost"): ReasonCase(
        "the server's answer never reached the client", "answer-not-received",
        "The server answered the ClientHello (its ServerHello and certificate, in a capture "
        "taken on the server's side of the path), but the client never acknowledged them: its "
        "ACKs stayed before the answer, or inside it after its first small segments, until it gave "
        "up waiting and closed or reset. What the "
        "client saw is what a silent server looks like. The classic cause is a path MTU black "
        "hole (the certificate needs full-size packets, and a link with a smaller MTU drops them "
        "while a firewall blocks the ICMP 'fragmentation needed' that would tell the server), or "
        "a firewall, IPS or DPI box that drops the server's TLS. Opportunistic MTAs then retry "
        "the server in plaintext. Taken on the client's side, the answer is missing from the "
        "capture too: a hole where the server's first bytes after the ClientHello go (longer than "
        "one alert record), which the client's acknowledgements a second or more after the "
        "server's next segment never covered, or never covered up to the client's close ten "
        "seconds or more after its ClientHello (the server's close after it shows the hole). The same on "
        "the SMTPS port 465.",
        "Ask the network team on the path between the two (both sides' firewalls, VPNs and "
        "tunnels) to let ICMP 'fragmentation needed' / 'packet too big' through, or to clamp "
        "the TCP MSS, and whether a box drops the server's TLS; capturing on the client's side "
        "too and running `pcapsmtp diff` shows where the bytes vanish.", "middlebox"),
    ("tls-handshake-failed", "server-old-tls"): ReasonCase(
        "the server chose a TLS version the client refuses", "tls-version-mismatch",
        "The server answered a ClientHello that offered TLS 1.2 or later by choosing TLS 1.1 or "
        "older, which RFC 8996 deprecates; current TLS libraries (OpenSSL 3 at its default "
        "security level, Go, GnuTLS) refuse it, so the client ended the handshake although it "
        "sent the alert or the close. Opportunistic MTAs (Postfix, Exim, OpenSMTPD) then retry "
        "the server in plaintext.",
        "Ask the receiving server's admin to enable TLS 1.2 and TLS 1.3 (update the TLS library "
        "or the server's protocol settings); the client's side needs no change.", "server"),
    ("tls-handshake-failed", "server-weak-dh"): ReasonCase(
        "the server's Diffie-Hellman group is too small for the client", "tls-weak-dh",
        "The server chose a DHE cipher suite and sent a finite-field Diffie-Hellman group under "
        "2048 bits (often the 1024-bit default of old servers); OpenSSL 3 at its default "
        "security level (Debian 12, RHEL 9) refuses it with 'dh key too small', so the client "
        "ended the handshake although it sent the alert. Opportunistic MTAs then retry the "
        "server in plaintext.",
        "Ask the receiving server's admin for Diffie-Hellman parameters of 2048 bits or more "
        "(or the RFC 7919 groups), or to prefer ECDHE cipher suites; the client's side needs no "
        "change.", "server"),
    ("tls-handshake-failed", "client-old-tls"): ReasonCase(
        "the client offered only TLS versions the server refuses", "tls-version-mismatch",
        "The client offered nothing newer than TLS 1.1 (RFC 8996 deprecates TLS 1.0 and 1.1) "
        "and the server, which requires a newer version, refused the ClientHello: the server "
        "sent the alert or the close, but the client's offer caused it.",
        "Ask the sending side's admin to enable TLS 1.2 and TLS 1.3 in its MTA or TLS library "
        "(an old OpenSSL or SChannel, or a configuration pinned to an old version).", "client"),
    ("tls-handshake-failed", "client-tls13-only"): ReasonCase(
        "the client offered TLS 1.3 alone and the server refused it", "tls-version-mismatch",
        "The client's ClientHello listed only TLS 1.3 in its supported versions, leaving out TLS "
        "1.2, which RFC 9325 (BCP 195) requires every implementation to support (TLS 1.3 is "
        "recommended, not required), and the server, whose newest version is older than TLS 1.3, "
        "refused the ClientHello with a protocol_version alert: the server sent the alert, but the "
        "client's offer caused it. A server on TLS 1.2 is compliant; receiving MTAs on older TLS "
        "libraries still are.",
        "Ask the sending side's admin to allow TLS 1.2 as well (a minimum protocol version set to "
        "TLS 1.3 in the MTA or TLS library, such as Postfix's smtp_tls_protocols or OpenSSL's "
        "MinProtocol): opportunistic SMTP must reach servers that do not have TLS 1.3 yet.", "client"),
    ("starttls-refused", "reset-forged"): ReasonCase(
        "a box on the path reset the connection at STARTTLS", "reset-forged",
        "Instead of the server's answer to STARTTLS, the client got a reset with the server's "
        "address, but not from the server: its TTL (hop limit) is not the one every other segment "
        "of the server came with, so a box at another distance, or with another initial TTL, "
        "sent it, or the server went on sending after it, which a stack that reset the connection "
        "never does (an IPS or firewall whose policy resets STARTTLS, often to both ends). To the "
        "client the server refused TLS; opportunistic MTAs then retry in plaintext.",
        "Ask the network team which firewall, IPS or DPI box on the path resets connections at "
        "STARTTLS (an ESMTP inspection or an IPS signature with a reset action), and to let "
        "STARTTLS through; the server's admin has nothing to fix. Capturing in front of the server "
        "too and running `pcapsmtp diff` shows that the server never sent that reset.", "middlebox"),
    ("tls-handshake-failed", "reset-forged"): ReasonCase(
        "a box on the path reset the TLS handshake", "reset-forged",
        "The handshake ended in a reset with the address of one side, but not from that side: its "
        "TTL (hop limit) is not the one every other segment of that side came with, so a box at "
        "another distance, or with another initial TTL, sent it, or that side went on sending after "
        "it, which a stack that reset the connection never does; typically a DPI box or firewall "
        "that reads the ClientHello's server name (SNI) and resets the connection, to both ends. "
        "Opportunistic MTAs then retry in plaintext.",
        "Ask the network team which firewall, IPS or DPI box on the path inspects TLS after "
        "STARTTLS and resets it (an SNI or TLS policy with a reset action), and to let it through; "
        "neither end's admin has anything to fix. Capturing on the other side of the box too and "
        "running `pcapsmtp diff` shows the reset the other side never sent.", "middlebox"),
    ("tls-not-started", "reset-forged"): ReasonCase(
        "a box on the path reset the connection after the 220", "reset-forged",
        "After the server's 220 to STARTTLS, a reset with the client's address came instead of its "
        "ClientHello, but not from the client: its TTL (hop limit) is not the one every other "
        "segment of the client came with, or the client went on sending after it, its ClientHello "
        "again (a capture on the server's side of a DPI box or firewall that dropped the ClientHello "
        "and reset both ends). The client did not break off; it "
        "was cut off.",
        "Ask the network team which firewall, IPS or DPI box on the path inspects TLS after "
        "STARTTLS and resets it (an SNI or TLS policy with a reset action), and to let it through; "
        "the sending side has nothing to fix. Capturing on the client's side of the box too and "
        "running `pcapsmtp diff` shows the reset the client never sent.", "middlebox"),
    ("tls-not-started", "answer-lost"): ReasonCase(
        "the server's 220 to STARTTLS never reached the client", "answer-not-received",
        "The server answered STARTTLS with 220 (in a capture taken on the server's side of the "
        "path), but the client never acknowledged it: its ACKs stayed before the 220, or the server "
        "sent it again with nothing of the client coming back. The client never learnt it could "
        "start TLS: it waited for an answer until it gave up (it closed, or went on in plaintext "
        "with QUIT), or the server's TLS handshake timeout, waiting for a ClientHello that could not "
        "come, closed first. Neither end broke off the handshake: a firewall, IPS or DPI box on the "
        "path dropped the server's answer (some ESMTP inspections drop what follows STARTTLS). "
        "Opportunistic MTAs then retry the server in plaintext.",
        "Ask the network team which firewall, IPS or DPI box on the path drops the server's answer to "
        "STARTTLS (an ESMTP inspection policy), and to let it through; neither end's admin has "
        "anything to fix. Capturing on the client's side too and running `pcapsmtp diff` shows "
        "where the 220 vanishes.", "middlebox"),
    ("no-mail-transaction", "reset-forged"): ReasonCase(
        "a box on the path reset the connection before any mail", "reset-forged",
        "The conversation ended in a reset with the address of one side, but not from that side: "
        "its TTL (hop limit) is not the one every other segment of that side came with, so a box "
        "at another distance, or with another initial TTL, sent it, or that side went on sending "
        "after it, which a stack that reset the connection never does (an ESMTP inspection that "
        "resets the session, an IPS that resets STARTTLS as it passes, seen from the server's "
        "side). Neither end left: the box cut them off before any mail.",
        "Ask the network team which firewall, IPS or DPI box on the path resets SMTP sessions "
        "(ESMTP inspection, an IPS signature on STARTTLS or EHLO with a reset action), and to let "
        "them through. Capturing on the other side of the box too and running `pcapsmtp diff` "
        "shows the reset that side never sent.", "middlebox"),
}


class FindingInfo(NamedTuple):
    """One finding code: its usual side, the RFC section, a short title, and what the admin
    should do about it (docs/verdicts.md)."""

    side: str
    rfc: str
    title: str
    action: str


_ASK_SERVER = "Ask the receiving server's admin to "

#: finding code -> (default side, RFC reference, short title, what to do)
FINDINGS: dict[str, FindingInfo] = {
    "ehlo-keyword-as-domain": FindingInfo(
        "server", "RFC 5321 4.1.1.1", "keyword in the domain slot of the EHLO reply",
        _ASK_SERVER + "send the server's own name on the first EHLO reply line (`250-mx.example.com`) "
        "and each keyword on a line of its own after it."),
    "ehlo-premature-end": FindingInfo(
        "server", "RFC 5321 4.2.1", "EHLO reply ends before its last line",
        _ASK_SERVER + "end the EHLO reply once, on its last line: `250-` on every line before it, "
        "`250 ` on the last (lines appended after the end are often added by a filter or proxy)."),
    "ehlo-mixed-codes": FindingInfo(
        "server", "RFC 5321 4.2.1", "EHLO reply lines with different codes",
        _ASK_SERVER + "send every line of the EHLO reply with the same code (250)."),
    "ehlo-bare-lf": FindingInfo(
        "server", "RFC 5321 2.3.8", "EHLO reply line ends in bare LF",
        _ASK_SERVER + "end every reply line with CRLF, not a bare LF."),
    "ehlo-line-too-long": FindingInfo(
        "server", "RFC 5321 4.5.3.1.5", "EHLO reply line over 512 octets",
        _ASK_SERVER + "keep every reply line within 512 octets (shorten the extension's parameter "
        "list, or drop the extension)."),
    "ehlo-bad-keyword": FindingInfo(
        "server", "RFC 5321 4.1.1.1", "EHLO line without a valid keyword",
        _ASK_SERVER + "fix or remove the line: a keyword follows `250-` directly, with no space, "
        "and is made of letters, digits and hyphens."),
    "ehlo-starttls-parameter": FindingInfo(
        "server", "RFC 3207 4", "STARTTLS keyword with a parameter",
        _ASK_SERVER + "send the line as `250-STARTTLS`, with nothing after the keyword."),
    "ehlo-legacy-keyword": FindingInfo(
        "server", "RFC 5321 4.1.1.1", "legacy X=Y keyword form such as AUTH=LOGIN (informational)",
        "Nothing to do: a note. Clients ignore the line; the server's admin may drop it once no "
        "old client needs it."),
    "ehlo-masked-keyword": FindingInfo(
        "middlebox", "RFC 5321 4.1.1.1", "masked EHLO keyword (low confidence)",
        "Ask the network team whether an ESMTP-inspecting firewall sits in front of the server "
        "(Cisco ASA/PIX `inspect esmtp` masks extensions it does not allow); capture behind it too "
        "and run `pcapsmtp diff`. STARTTLS itself is not affected when it is offered validly."),
    "starttls-with-parameter": FindingInfo(
        "client", "RFC 3207 4", "STARTTLS sent with a parameter",
        "Ask the sending side's admin to send the command as a bare `STARTTLS`: a strict server "
        "refuses it with a parameter (501)."),
    "starttls-not-advertised-but-used": FindingInfo(
        "client", "RFC 3207 4", "STARTTLS used though not offered",
        "If the server answered 220, the offer was probably removed on the way: capture in front "
        "of the server too and run `pcapsmtp diff`. Otherwise ask the sending side's admin why it "
        "sends STARTTLS to a server that does not offer it."),
    "starttls-reply-not-220": FindingInfo(
        "server", "RFC 3207 4", "STARTTLS answered with a 2xx code other than 220",
        _ASK_SERVER + "answer STARTTLS with `220` (`220 2.0.0 Ready to start TLS`): Postfix, Exim "
        "and Mutt start TLS on any 2xx answer, but clients that want 220 (CPython's smtplib, curl) "
        "read another code as a refusal and stay in plaintext or give up."),
    "starttls-masked": FindingInfo(
        "middlebox", "RFC 3207 4", "STARTTLS keyword masked by a middlebox",
        "Ask the network team to turn off the STARTTLS masking of its ESMTP inspection (Cisco "
        "ASA/PIX: `no inspect esmtp`, or allow-tls in the ESMTP policy map)."),
    "banner-masked": FindingInfo(
        "middlebox", "RFC 5321 4.3.1", "banner masked with asterisks",
        "Ask the network team to turn off banner masking (Cisco ASA/PIX: `mask-banner` in the "
        "ESMTP policy map, or `no inspect esmtp`): Postfix takes a masked banner for a PIX and "
        "greets with HELO, which cannot ask for STARTTLS."),
    "reply-out-of-step": FindingInfo(
        "server", "RFC 5321 4.2", "a reply no command awaited: later replies one behind",
        _ASK_SERVER + "send exactly one reply per command (or whoever runs the proxy or load "
        "balancer in front of it, when that adds a greeting of its own): here a reply ended early "
        "or came twice, and clients read every later reply one command late."),
    "answer-not-received": FindingInfo(
        "middlebox", "RFC 1191", "the server's answer never reached the client",
        "Ask the network team on the path to let ICMP 'fragmentation needed' / 'packet too big' "
        "through (or clamp the TCP MSS), and whether a firewall or IPS drops the server's TLS "
        "records: the finding names the answer the client never acknowledged and how long it "
        "waited."),
    "request-not-received": FindingInfo(
        "middlebox", "RFC 9293 3.4", "the client's STARTTLS or ClientHello never reached the server",
        "Ask the network team on the path which firewall, IPS or DPI box drops the client's "
        "STARTTLS or TLS (or, for a ClientHello, to let ICMP 'fragmentation needed' / 'packet "
        "too big' through, or clamp the TCP MSS): the finding names what the server never "
        "acknowledged and how long the client waited (or the server, when its timeout ended the "
        "session first)."),
    "client-silent": FindingInfo(
        "client", "RFC 8446 2", "the client never answered the server's whole TLS answer",
        "Ask the sending side's admin why its TLS client stalled after the server's answer (the "
        "finding names the answer's last record, which the client's TCP acknowledged, and how long "
        "it stayed silent); the receiving server is not the cause."),
    "no-answer": FindingInfo(
        "server", "RFC 5321 4.5.3.2", "no answer until the client gave up waiting",
        _ASK_SERVER + "find out why its greeting, its EHLO reply, STARTTLS or the TLS handshake hangs (the "
        "finding names which went unanswered, and how long the client waited), and the network "
        "team whether a firewall, IPS or DPI box in front of the server drops the command or the "
        "TLS records (or, for a greeting, accepts connections on the server's behalf): capture in "
        "front of the server too and run `pcapsmtp diff`."),
    "server-closed": FindingInfo(
        "server", "RFC 5321 3.8", "the server closed the connection right after refusing STARTTLS",
        _ASK_SERVER + "say why it refuses STARTTLS and ends the session: after a 421 the close is "
        "what the reply announced (shutting down, a connection or rate limit, a policy on the "
        "sending host); after another code (454, a 5xx) it should keep the connection open for "
        "the client's next command (RFC 5321 3.8), and a server process that fails its TLS setup "
        "and exits is the usual cause."),
    "reset-forged": FindingInfo(
        "middlebox", "", "a reset the side whose address it carries did not send",
        "Ask the network team which firewall, IPS or DPI box on the path resets the connection (an "
        "IPS 'reset' or 'reset-both' action on the STARTTLS command or on the ClientHello's server "
        "name, an ESMTP inspection that resets the session, a national firewall), and to let SMTP "
        "and its TLS through: the finding names the reset's frame and TTL (hop limit) and those of "
        "the side's own segments, or the side's first segment after the reset; capturing on the "
        "other side of the box too and running `pcapsmtp diff` shows the reset that side never "
        "sent."),
    "starttls-command-injection": FindingInfo(
        "client", "RFC 3207 4.2", "plaintext after STARTTLS before the 220",
        "Ask the sending side's admin to fix or update the client (it must wait for the 220), "
        "and the receiving server's admin to check that the server discards bytes sent before "
        "the handshake (CVE-2011-0411 class)."),
    "starttls-response-injection": FindingInfo(
        "server", "RFC 3207 4.2", "plaintext after the 220 to STARTTLS",
        _ASK_SERVER + "send nothing after the 220 to STARTTLS but the TLS handshake; check that "
        "the clients discard bytes received before it."),
    "starttls-offered-again": FindingInfo(
        "server", "RFC 3207 4.2", "STARTTLS offered again after TLS",
        _ASK_SERVER + "leave STARTTLS out of the EHLO reply once TLS is under way; behind a TLS "
        "terminator, the server must be told the session is already encrypted."),
    "plaintext-after-starttls": FindingInfo(
        "capture", "RFC 3207 4", "readable bytes where TLS was expected",
        "Readable SMTP: the capture point sees a decrypted side; capture in front of the TLS "
        "terminator to see the handshake. Bytes that are neither TLS nor SMTP: ask the side that "
        "sent them (the verdict names it) why it did not start TLS."),
    "implicit-tls-on-starttls-port": FindingInfo(
        "client", "RFC 8314 3.3", "ClientHello on a STARTTLS port",
        "Configure the client for STARTTLS on port 25 or 587 (often called \"STARTTLS\" or "
        "\"TLS\" in its settings), or for implicit TLS (\"SSL/TLS\") on port 465: the server's "
        "plaintext greeting is right on this port."),
    "implicit-tls-plaintext-reply": FindingInfo(
        "server", "RFC 8314 3.3", "ClientHello answered in plaintext",
        "Point the client at the server's SMTPS port (465), or configure it for STARTTLS on "
        "port 25 or 587; or ask the server's admin to speak TLS from the first byte on this port."),
    "tls-alert": FindingInfo(
        "server", "RFC 8446 6", "TLS alert during the handshake",
        "Ask the side that sent the alert (the finding names it) what it refused: "
        "`protocol_version` or `handshake_failure`: align TLS versions and ciphers; "
        "`bad_certificate`, `unknown_ca`, `certificate_expired`: fix the certificate or the "
        "sender's trust store."),
    "tls-version-mismatch": FindingInfo(
        "server", "RFC 8996", "no TLS version both sides accept",
        "Enable TLS 1.2 and TLS 1.3 on the side the finding names: RFC 8996 deprecates TLS 1.0 "
        "and 1.1, current TLS libraries refuse them by default, and RFC 9325 requires TLS 1.2 "
        "(a client that offers TLS 1.3 alone leaves it out)."),
    "tls-weak-dh": FindingInfo(
        "server", "RFC 7919", "Diffie-Hellman group the client refuses (under 2048 bits)",
        _ASK_SERVER + "use Diffie-Hellman parameters of 2048 bits or more (the RFC 7919 groups), or "
        "prefer ECDHE cipher suites."),
    "tls-certificate": FindingInfo(
        "server", "RFC 8460 4.3", "certificate problem visible in the handshake",
        "Ask the receiving server's admin for a certificate that is valid now, names the host "
        "the sender connects to (the MX name) and chains to a trusted CA (or publish DANE TLSA "
        "records for it)."),
    "tcp-gap": FindingInfo(
        "capture", "", "bytes missing from the capture",
        "Segments that crossed the wire never reached the capture (kernel or mirror-port drops, "
        "asymmetric routing): capture again with a bigger buffer (`tcpdump -B 16384`), on the host "
        "itself or where both directions pass; nobody is blamed on bytes the capture lost."),
    "capture-truncated": FindingInfo(
        "capture", "", "frames cut by the capture's snap length",
        "The capture stored only the first bytes of each frame (its snap length: old tcpdump "
        "defaults of 68 or 96 bytes, `-s 128`, appliances that keep headers only). Capture "
        "again with the whole frame: `tcpdump -s 0` (262144 bytes), `tshark -s 0`, or the "
        "appliance's full-packet setting; nobody is blamed on bytes the capture did not keep."),
    "tcp-overlap-conflict": FindingInfo(
        "capture", "", "retransmission with different bytes",
        "Two copies of the same bytes differ (the first was used): capture at another point to "
        "see which copy the receiver got; if they differ there too, something on the path "
        "rewrites packets."),
    "midstream": FindingInfo(
        "capture", "", "capture starts in the middle of the conversation",
        "Start the capture before the connection opens, so that the SYN, the greeting and the "
        "EHLO exchange are in it."),
    "one-sided": FindingInfo(
        "capture", "", "only one direction captured",
        "Capture where both directions pass (not on one leg of an asymmetric route), with a "
        "filter that keeps both (`tcp port 25`, not `dst port 25`)."),
    "limit-reached": FindingInfo(
        "capture", "", "a size limit of the parser was reached",
        "Usually nothing: the verdict rests on what was kept. A line, a reply or a run of "
        "pipelined commands that long is odd in itself: look at it in Wireshark at the "
        "finding's frame."),
    "clock-step": FindingInfo(
        "capture", "", "the capture's clock stepped back in the middle of the conversation",
        "Capture on a host whose clock NTP slews rather than steps (chrony `makestep` only at boot, "
        "ntpd `-x`), and merge the captures of two hosts with `mergecap` (by time) rather than "
        "putting them one after the other; a verdict that turns on a duration across the step "
        "stays `incomplete`."),
    "capture-loss": FindingInfo(
        "capture", "", "the capture dropped packets while the conversation was open",
        "Give `pcapsmtp live` a bigger receive buffer (`-B KIB`), a narrower filter, or a less "
        "loaded machine; a verdict that would rest on bytes after the loss stays `incomplete`."),
}

#: reasons of an EHLO exchange whose defect a client that requires TLS (msmtp ``tls on``, dma,
#: s-nail ``smtp-use-starttls``, an MTA with a TLS-required policy, Cisco ESA "TLS Required")
#: gives up on: the outcome is then ``aborted`` with the same blame and reason.
GIVE_UP_REASONS = ("starttls-not-offered", "starttls-misplaced", "starttls-masked", "ehlo-rejected")

#: (reason, case) -> RFC 8460 result type, where it differs from the reason's (None: none; a
#: session that never tried the receiving server's STARTTLS or stalled on the sender's side is
#: no failure of the receiver's TLS, and a report would hold it against a server that answered
#: right; an offer of STARTTLS the path lost is no server without STARTTLS)
TLSRPT_CASE_RESULT: dict[tuple[str, str], str | None] = {
    ("implicit-tls-mismatch", "client-tls-port"): None,
    ("tls-handshake-failed", "client-silent"): None,
    ("ehlo-rejected", "answer-lost"): "validation-failure",
}

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


def tlsrpt_result(reason: str, case: str | None, specific: str | None = None) -> str | None:
    """The RFC 8460 result type of a verdict: its case's own (``TLSRPT_CASE_RESULT``, None
    included), else ``specific`` (what the verdict found, a certificate's fault), else its
    reason's (``TLSRPT_RESULT``); None when no failure of the receiving server's TLS is to be
    reported."""
    if case is not None and (reason, case) in TLSRPT_CASE_RESULT:
        return TLSRPT_CASE_RESULT[(reason, case)]
    return specific or TLSRPT_RESULT.get(reason)
