#!/bin/sh
# Regenerates every committed file under results/ from the data directory ($TOXBENCH_DATA_DIR or
# --data-dir's default) and the committed local runs in results/runs. It needs no key, no GPU and
# no network, loads no model, and leaves `git status` clean (tests/test_results.py checks it).
#   sh results/regenerate.sh                 # from the repository root
# Sources, exactly: the release's prediction files (replayed into RUNS), the ensembles this script
# records there, and the committed local runs in results/runs. Your own runs (runs/) are never
# read: RUNS is a fresh temporary directory unless you name one.
# RUNS: where the release's prediction files are replayed (default: a temporary directory, removed
# at the end); OUT: where the tables go.
set -eu
cd "$(dirname "$0")/.."
TOXBENCH=${TOXBENCH:-toxbench}
CLEANUP=""
if [ -z "${RUNS:-}" ]; then
  RUNS=$(mktemp -d "${TMPDIR:-/tmp}/toxbench-release-runs.XXXXXX")
  CLEANUP="$RUNS"
fi
# Derived (disguised) datasets hold the mirror's texts: they go to a temporary directory, never here.
DERIVED=$(mktemp -d "${TMPDIR:-/tmp}/toxbench-perturbed.XXXXXX")
trap 'rm -rf "$DERIVED" $CLEANUP' EXIT
OUT=${OUT:-results}
# The paper's tables first: it replays the release's files into $RUNS, which the ensembles combine.
$TOXBENCH paper --runs "$RUNS" --out "$OUT/paper" --quiet
# Every stacking recipe tried (none recorded), on all published ToxiFrench runs and on the API-free ones;
# then the vote and the nested-C stack recorded as runs, so that the leaderboard below ranks them.
ensemble() { $TOXBENCH ensemble --dataset toxifrench --runs "$RUNS" "$@" > /dev/null; }
ensemble --c 1 --c auto --features votes --features scores --best-k 10 --in-sample --no-record --out "$OUT/ensembles"
ensemble 'camembert*' 'distilbert*' 'french-tox*' 'llama-guard*' 'mistral-7b*' 'polyguard*' 'qwen*' 'rec_soap*' 'shield-gemma*' 'toxic-bert*' \
  --c 1 --c auto --features votes --features scores --best-k 10 --no-record --name toxifrench-api-free --out "$OUT/ensembles"
ensemble --c auto
$TOXBENCH leaderboard --runs "$RUNS" --include-runs results/runs --out "$OUT" --quiet
$TOXBENCH leaderboard --dataset toxicspans-en:test --runs "$RUNS" --include-runs results/runs --no-published --out "$OUT/toxicspans-en" --quiet
mkdir -p "$OUT/annotation"
$TOXBENCH annotate agreement toxifrench-agreement --out "$OUT/annotation" > /dev/null
$TOXBENCH annotate rule toxifrench-agreement --threshold 4 --human-col "annotator's conclusion" > "$OUT/annotation/high-confidence-rule.txt"
$TOXBENCH sweep experiments/icl-table5.toml --source published --runs "$RUNS" --out "$OUT/icl-table5"
$TOXBENCH sweep experiments/icl-smollm2.toml --recorded --runs results/runs --out "$OUT/icl-smollm2"
# Robustness to disguise (docs/robustness.md): the committed runs on ToxiFrench and on its disguised versions.
TRANSFORMS="-t leetspeak -t homoglyphs -t separators -t repeats -t accents-strip -t phonetic -t sms -t emoji -t spacing -t counterfactual"
robust() { $TOXBENCH robustness $TRANSFORMS --recorded --runs results/runs --datasets "$DERIVED" "$@" > /dev/null; }
robust --model baseline --out "$OUT/robustness/baseline"
robust --model finetuned:minilm-cpu-2 --out "$OUT/robustness/finetuned-minilm-cpu-2"
robust --model hf:smollm2-135m-instruct --model-arg mode=score --sample 200 --out "$OUT/robustness/smollm2-135m-score"
