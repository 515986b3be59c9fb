"""Reports of experiments (recipe stage 13 and the ablation runner): training-log parsing, the environment, plots,
RESULTS.md tables, the ablation plan and its tables."""
