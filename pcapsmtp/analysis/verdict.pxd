# Augmenting declarations for the compiled build of verdict.py (Cython, pure-Python mode;
# setup.py). The .py stays the reference and what runs without the build: this file only makes
# ``_Facts`` (one per conversation, built by ``judge``) an extension type whose attributes are
# fields of its C struct, so that its one pass over the transcript's items reads and appends to
# its lists and dictionaries as C calls (the locals it takes from them are inferred as ``list``
# and ``dict``), and its methods are called through the type's table from within it
# (docs/performance.md, "Twenty-sixth session"). Every attribute keeps the Python value the .py
# stores. A new attribute of ``_Facts`` in the .py must be declared here (the compiled class has
# no ``__dict__``); one declared ``list`` or ``dict`` must always hold one.
#
# The module functions below, whose first argument is the ``_Facts``, are ``cpdef`` with it typed:
# called from ``judge`` (whose ``f`` Cython infers as ``_Facts``) or from one another they are C
# calls, and their reads of ``f``'s fields are C reads. Only functions without a closure (no
# nested function, lambda or generator expression: Cython refuses them in a ``cpdef`` function)
# and without keyword-only arguments are here; the argument names and defaults (``=*``) must
# match the .py's. Changing such a function's arguments, or adding a generator expression to
# it, means changing or removing its line here (the build says which). A function's locals may
# be typed too (``@cython.locals`` above its line): such a local must only ever hold that type
# in the .py (or None, where the type is a class).

cimport cython
# (the transcript's items, ``model.Item``: their ``event`` a C read in ``_scan``; the compiled
# verdict runs only beside the compiled model, pcapsmtp/__init__.py, ``_NEEDS``. Named ``_Item``
# here: the .py's ``Item`` stays a module attribute, which analysis/clock.py imports.)
from pcapsmtp.model cimport Item as _Item

cdef class _Facts:
    cdef public object t, greeting, out_of_step, masked_command, delivered, starttls, mail
    cdef public object transaction, implicit, auth_item, quit, ready, clear
    cdef public list hellos, gaps, overlaps, anomalies, tls, tls_pos, after_tls, commands
    cdef public list all_gaps, harmless_gaps
    cdef public dict replies, stray_after, ends, in_progress, index, meant

    cpdef present(self, side)
    cpdef own_end(self, side)
    cpdef pos(self, it)
    cpdef reply_to(self, cmd_item)
    cpdef gap_before(self, pos)
    cpdef gap_between(self, lo, hi, side=*)

# ``_Facts``'s pass over the items (once per event): the item typed, the index a C integer, the
# class-to-kind table a ``dict`` (its ``get`` a C call)
@cython.locals(it=_Item, i=Py_ssize_t, kinds=dict, meant=dict)
cpdef _scan(_Facts f, items, set harmless)
cpdef _unprompted_tls(_Facts f)
cpdef _unprompted_tls_words(_Facts f)
cpdef _tls_summary(_Facts f, after)
cpdef _before_client_gave_up(_Facts f, records, since)
cpdef _hole_hides(_Facts f, v, after, it)
cpdef _never_had(_Facts f, crossed)
cpdef _rest_after(_Facts f, ts, answer, act, crossed=*)
cpdef _absent(_Facts f, side)
cpdef _one_sided(_Facts f)
cpdef _one_sided_detail(_Facts f, other)
cpdef _one_sided_hello(_Facts f, ts, st_item)
cpdef _server_gave_up_on_clienthello(_Facts f, v, after, end)
cpdef _server_gave_up_on_client_flight(_Facts f, v, ts, end)
cpdef _client_hung_after_answer(_Facts f, v, ts, end)
cpdef _had_answer_ns(_Facts f, last, before)
cpdef _answer_stalled(_Facts f, ts, ender)
cpdef _gave_up_at(_Facts f, last, ender)
cpdef _acked_answer(_Facts f, ts, end, plaintext=*)
cpdef _answer_waited_on(_Facts f, ts, end, plaintext=*, until_end=*)
cpdef _answer_came_late(_Facts f, ch, answer)
cpdef _client_waited(_Facts f, ts, first, end, plaintext)
cpdef _server_stream_known(_Facts f, before)
cpdef _server_silent(_Facts f, asked, until)
cpdef _gave_up_on_clienthello(_Facts f, v, ts, ender, what)
cpdef _unreceived(_Facts f, sender, start, end, since_ns, resend=*)
cpdef _hole_unreceived(_Facts f, hole, due)
cpdef _hole_sent_by(_Facts f, hole)
cpdef _not_received(_Facts f, asked)
cpdef _hole_words(_Facts f, hole, lost, due)
cpdef _ready_not_received(_Facts f, v, after, ender, what)
cpdef _lost_answer(_Facts f, v, answer, start, end, since_ns, reason, rfc, words)
cpdef _reset_forgery(_Facts f, end)
cpdef _forged_reset(_Facts f, v)
cpdef _hello_hole_lost(_Facts f, v, ts, after)
cpdef _smtps_hello_hole_lost(_Facts f, v)
cpdef _starttls_hole_lost(_Facts f, v, offered, ehlo_reply, clear)
cpdef _starttls_hole_answered(_Facts f, v, hole, ehlo_reply, clear)
cpdef _server_end_words(_Facts f, end)
cpdef _too_late(_Facts f, asked, reply)
cpdef _after(_Facts f, it, end)
cpdef _starttls_unanswered(_Facts f, v, st_item, step, clear)
cpdef _unanswered_clear(_Facts f, clear)
cpdef _judge_plaintext(_Facts f, v, offered, chk, ehlo_item, ehlo_reply, first_hello, ehlo_refused, greeting_ev)
cpdef _no_ehlo_reply_words(_Facts f, ehlo_item, clear)
cpdef _offered_again(_Facts f, v, after)
cpdef _clear_before(_Facts f, st_item)
cpdef _judge_give_up(_Facts f, v, offered, chk, ehlo_item, ehlo_reply, ehlo_refused)
cpdef _ehlo_unanswered(_Facts f, v, ehlo_item, ehlo_reply, outcome=*, tail=*)
cpdef _timeout_crossed(_Facts f, st_item)
cpdef _reply_before(_Facts f, it)
cpdef _closed_too_soon(_Facts f, v, outcome, since, timeout, st_item, then)
cpdef _idled_into_timeout(_Facts f, v, since, timeout, st_item, gone)
cpdef _server_left(_Facts f, after)
cpdef _client_step_unseen(_Facts f, hole)
cpdef _judge_in_progress(_Facts f, v)
