"""Experiment: the ablation grid (``grid``), its config (``config``) and its wiring to the stages
(``stages``): teachers x methods x seeds, each cell mine -> train -> evaluate, resumable."""
