"""Experiments: records, results, comparisons, plots, reports and tuning."""
