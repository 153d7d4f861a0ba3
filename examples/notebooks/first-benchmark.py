# %% [markdown]
# # A first benchmark from Python
#
# The notebook way in: make runs, rank them, compare two, and read everything as pandas
# DataFrames. Open this file in Jupyter (with jupytext) or VS Code as a notebook, or run it as a
# script: `python examples/notebooks/first-benchmark.py`. It needs no key, no GPU and no download
# beyond the data directory (`toxbench data fetch`, or `TOXBENCH_DATA_DIR` pointing at a copy).
# CI runs it end to end (tests/test_notebook_example.py).

# %%
import toxbench

# %% [markdown]
# ## Two runs
# The offline baseline (character n-gram TF-IDF + logistic regression, trained on annotated
# comments that are in no benchmark) on a seeded, class-balanced sample of 200 ToxiFrench
# comments, with two regularisation strengths. Each call makes the run `toxbench run` would make
# (same id, records and cache), or resumes it.

# %%
strong = toxbench.evaluate("baseline", "toxifrench", sample=200, model_args={"C": 4.0})
weak = toxbench.evaluate("baseline", "toxifrench", sample=200, model_args={"C": 0.1})
for run in (strong, weak):
    m = run.metrics
    print(f"{run.run_dir.name}: accuracy {m.accuracy:.3f} [{m.accuracy_ci_low:.3f}, {m.accuracy_ci_high:.3f}], n={m.n}")

# %% [markdown]
# A run's records, one row a sample: the answer, its status, the gold label, the score.

# %%
records = strong.records
print(records[["sample_id", "gold", "pred", "score", "status"]].head().to_string(index=False))
print(records["status"].value_counts().to_dict())

# %% [markdown]
# Every run in the runs directory:

# %%
print(toxbench.list_runs()[["label", "dataset", "status", "recorded"]].to_string(index=False))

# %% [markdown]
# ## A leaderboard
# Both runs are on a sample, so the board ranks them apart from whole-dataset runs (`rows="subset"`).
# `published=True` would first replay the release's published predictions.

# %%
(board,) = toxbench.leaderboard("toxifrench", published=False, out="results/notebook")
table = board.frame("subset")
print(
    table[["run", "accuracy", "accuracy_ci_low", "accuracy_ci_high", "f1_1", "roc_auc"]].round(3).to_string(index=False)
)

# %% [markdown]
# ## A paired comparison
# Exact McNemar test on the samples both runs labelled, Cohen's kappa, and macro-F1 intervals from
# a paired bootstrap; the disagreements as a DataFrame.

# %%
comparison = toxbench.compare(strong.run_dir, weak.run_dir)
print(f"McNemar p = {comparison.mcnemar_p:.4g}, kappa = {comparison.kappa:.3f}, n = {comparison.n_common}")
print("macro F1 difference A - B: {1:+.3f} [{0:+.3f}, {2:+.3f}]".format(*comparison.f1_diff))
print(comparison.frame().head().to_string(index=False))
