# Augmenting declarations for the compiled build of ehlo.py (Cython, pure-Python mode; setup.py).
# The .py stays the reference and what runs without the build: this file only makes
# ``check_ehlo`` (once per EHLO reply, from the verdict) and the helpers it calls for each line
# ``cpdef``, so that their arguments and locals can be typed: the reply's lines are the SMTP
# events' ``ReplyLine`` (events.pxd), whose fields it reads as C fields instead of through a
# generic attribute look-up each, and ``_first_word`` and ``masked_keyword`` are C calls
# (docs/performance.md, "Twenty-seventh session"). Because of the cimport, the compiled ehlo
# runs only beside the compiled events (pcapsmtp/__init__.py, ``_NEEDS``). A ``cpdef`` function
# holds no generator expression or other closure (Cython does not compile one inside it):
# adding one to these functions means removing their line here.

cimport cython
from pcapsmtp.smtp.events cimport ReplyLine

cpdef _first_word(text)
cpdef bint masked_keyword(word)

@cython.locals(body=str)
cpdef bint is_masked_banner(text)

@cython.locals(first=ReplyLine, ln=ReplyLine, i=Py_ssize_t, starttls_valid=bint)
cpdef check_ehlo(lines, stray=*)
