"""Report: the ablation's markdown tables (``tables``) and plots (``plots``, matplotlib imported lazily)."""

from hardneg.report.markdown import write_report
from hardneg.report.tables import summarize

__all__ = ["summarize", "write_report"]
