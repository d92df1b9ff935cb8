"""Measuring tools (no torch): the challenge metric and CSV contract (``metrics``), the worst rows as a
contact sheet (``worst_sheet``), the parser's IoU (``parser_eval``), the geometric error budget
(``error_budget``), speed (``benchmark``) and the stacker's fit with its out-of-fold report
(``stacker_fit``)."""
