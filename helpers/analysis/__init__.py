"""Decisions and sentences from result tables: verdicts with their targets as arguments, the uniform-width curve,
plan-row checks, findings, 08's report on test, the tabular benchmark's analysis and the answer (every claim, one
row each, and the hypothesis's word by a fixed rule).

Layer 9 of the house (``helpers.LAYERS``): its modules import only this package and the
packages below it. Import a module from here (``from helpers.analysis import curve``); names with a leading
underscore stay inside the package.
"""

__all__ = ['answer', 'curve', 'final_report', 'findings', 'fit_bench', 'plan_rows', 'table_analysis', 'verdicts']
