"""Analysis: paired significance over queries (``significance``) and diagnostics of mined negatives
(``negatives``: score distributions, false-negative rates). Pure numpy over plain dicts and rows."""
