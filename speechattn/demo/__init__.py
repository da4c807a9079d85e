"""``make demo`` and what it leaves: the staged end-to-end run (``pipeline``), its closing table
(``results``) and the self-contained HTML report of an experiment (``report``)."""
