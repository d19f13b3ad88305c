"""Inflation reports after the fact: the analysis, and the plot (matplotlib, optional)."""
