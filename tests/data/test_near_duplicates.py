"""Near copies: the n-gram Jaccard on normalised text, the exact prefix-filtered search, and what the
training-data selection leaves out because of it."""

import random
from itertools import product

from toxbench.data.annotated import annotated_selection
from toxbench.data.datasets import load_dataset
from toxbench.data.near_duplicates import jaccard, near_duplicates, ngrams, normalise


def test_normalisation_ignores_case_spacing_and_punctuation():
    assert normalise("  Va te FAIRE...  foutre !\n\n") == "va te faire foutre"
    assert ngrams("I am going to shove a pineapple up your ass \n\nYou'll") == ngrams(
        "I am going to shove a pineapple up your ass. \n\nYou'll"
    )
    assert jaccard(ngrams("abcdef"), ngrams("abcdeg")) == 1 / 3  # {abcde, bcdef} vs {abcde, bcdeg}
    assert ngrams("ok") == frozenset(["ok"])  # shorter than an n-gram: the text itself


def test_known_pairs_above_and_below_the_threshold():
    probes = [
        "Je vais te foutre un ananas dans le cul, tu vas voir, espèce de connard fini",
        "Va te faire foutre, espèce de pd.",
        "Bonjour à tous, il pleut encore aujourd'hui sur Paris",
    ]
    references = [
        "Il pleut",
        "je vais te foutre un ANANAS dans le cul ! tu vas voir, espèce de connard fini",
        "Va te faire foutre, espèce de salope.",
    ]
    (match,) = near_duplicates(probes, references, 0.8)
    assert (match.probe, match.reference, match.similarity) == (0, 1, 1.0)


def test_prefix_filtering_finds_exactly_what_comparing_every_pair_finds():
    rng = random.Random(3)
    words = ["va", "te", "faire", "voir", "espèce", "de", "idiot", "bonjour", "merci", "pluie", "soleil", "demain"]
    base = [" ".join(rng.choice(words) for _ in range(rng.randint(3, 14))) for _ in range(60)]
    probes = [t if rng.random() < 0.5 else t + " " + rng.choice(words) for t in base[:40]] + ["sans rapport"]
    for threshold in (0.6, 0.8, 0.9):
        brute = {}
        for (i, p), (j, r) in product(enumerate(probes), enumerate(base)):
            s = jaccard(ngrams(p), ngrams(r))
            if s >= threshold and (i not in brute or s > brute[i][1]):
                brute[i] = (j, s)
        found = {m.probe: m.similarity for m in near_duplicates(probes, base, threshold)}
        assert found == {i: s for i, (_, s) in brute.items()}


def test_training_selection_leaves_out_near_copies_of_benchmark_texts(data):
    selection = annotated_selection(data)
    # measured on the pinned files: the same Jigsaw comment under another id, with a full stop or a
    # trailing "only for the lulz" more or less than the benchmark's copy
    assert [(n.row_id, n.dataset, n.sample_id) for n in selection.near_copies] == [
        ("84d7d0a1bd8fd4f7", "jigsaw-en", "8e125aad3c3bba01"),
        ("e7286064eda58149", "jigsaw-en", "4b3e192dbda2c4c9"),
        ("65bd67fef6fcbcc5", "jigsaw-en", "6751bbf92ec5c24a"),
    ]
    assert selection.removed == {"benchmark_id": 409, "benchmark_text": 7, "near_copy": 3, "repeated": 91}
    assert selection.read == 1881 and len(selection.rows) == 1881 - 409 - 7 - 3 - 91
    kept = {r.id for r in selection.rows}
    assert not kept & {n.row_id for n in selection.near_copies}
    # nothing kept is a near copy of any benchmark text, in French or in the English original
    benchmark = [
        s.text
        for name in ("toxifrench", "rtplx-fr", "jigsaw-en", "jigsaw-fr", "hateday-fr")
        for s in load_dataset(name, data).samples
    ]
    texts = [r.text for r in selection.rows] + [
        r.fields["original_text"] for r in selection.rows if r.fields.get("original_text")
    ]
    assert near_duplicates(texts, benchmark, 0.8) == []
    # the material's balance: the agreement set is even, the Jigsaw subset nearly all toxic
    assert selection.balance() == {"agreement": {1: 249, 0: 250}, "jigsaw": {1: 871, 0: 1}}
