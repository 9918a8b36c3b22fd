"""One validation framework for received rows: trades and every kind of reference data.

A kind of input (trades, instruments, books, prices, FX rates) declares its rules once, as a
:class:`~desk_pipeline.domain.validation.rules.RuleSet`: one ``Column`` per received column, each
with a kind of cell that reads the column and says, per row, which of its checks fail and with
what reason code. :func:`~desk_pipeline.domain.validation.rules.validate` applies a rule set to a
frame, vectorised (a few passes over each column, no per-row Python), and returns the valid rows
typed and the rejected ones as quarantine rows; nothing is lost.

The modules, by concern:

- ``rules``: the framework core, ``Column``, ``RuleSet``, ``validate`` and ``first_failures``.
- ``cells``: received cells as text or numbers (``Received``), the ``Kind`` protocol every kind
  of cell follows, and the control-character rule.
- ``text``: ids, free text and choices from a vocabulary (``Id``, ``Text``, ``Choice``).
- ``numbers``: decimal and whole numbers (``Number``, ``Whole``).
- ``times``: calendar dates and instants (``Date``, ``Instant``).
- ``quarantine``: quarantine rows, the row as received in JSON and rejection fingerprints.

The rules that hold for every kind, decided here once:

- **Headers**: received column names are read stripped and in lower case (as the landing
  contract reads them); names that then repeat quarantine every row (``repeated_columns``). A
  required column missing quarantines every row (``missing_columns``); extra columns are ignored.
- **Cells**: every cell is read as its text, stripped, a missing cell as ``""``; typed numbers and
  dates (the simulator's, an upstream table's) are taken as they are.
- **Control characters**: no kept text holds a control character (C0 U+0000-U+001F, DEL U+007F,
  C1 U+0080-U+009F), a line or paragraph separator (U+2028, U+2029: they break lines as NEL does)
  or an unpaired surrogate (``cells.CONTROL_CHARACTERS``), ids and free text
  alike (``bad_<column>``).
  Free text used to allow tabs and line ends (only NUL and surrogates were refused there); the
  stricter rule is the one kept: such text breaks CSV exports, logs and one-line reports, and no
  reference file of the desk needs it.
- **Ids**: not blank, at most ``text.MAX_ID_LENGTH`` characters; a book id also at most
  ``trades.MAX_BOOK_ID_BYTES`` bytes in UTF-8 wherever it arrives (trades and books alike). No
  character that does not show as itself (``cells.hidden``: a format character, category Cf, such
  as zero-width spaces and joiners, BOM, soft hyphen, bidi overrides; a variation selector or
  Hangul filler; a space other than U+0020; an unassigned or private-use code point), and in
  Unicode normalization form C (``cells.format_check``, ``bad_<column>`` naming the character by
  code point): such an id is another id that shows as the same one. Free text keeps them (a
  name may need a zero-width joiner).
- **Precedence**: a row fails with the first failing check, in column order, then in each
  column's check order; every check has its own reason code and reason.
- **Repeats**: a key repeated with other content is quarantined (``conflicting_duplicate``), the
  first row winning; an exact repeat is dropped (reference data) or kept as accepted (trades, so
  that accepted + quarantined = received per file; the warehouse stores it once).

pandera was weighed for this and not taken: its lazy validation reports every failure of every
check, where the quarantine keeps the first per row with the desk's own reason code, so each rule
would still be a custom check plus a pass picking the first failure, and the strict readers
(``domain.parsing``) stay the desk's own. It would add a dependency without removing code.
"""
