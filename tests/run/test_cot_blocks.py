"""The annotation blocks' parsers: known blocks in, typed fields or a named status out; and the
step table against the data directory's headers."""

from __future__ import annotations

import json
import re

import pytest

from toxbench.data.annotated import AGREEMENT, read_rows
from toxbench.run.cot_blocks import parse_block
from toxbench.run.cot_steps import categories, load_steps, step_keys, user_message


def test_the_closed_category_list_is_the_headers(data):
    header = data.path("toxifrench/cot_headers/categorie.txt").read_text("utf-8")
    listed = json.loads(re.search(r"^\[.*\]$", header, re.MULTILINE).group(0))
    assert tuple(listed) == categories() and "Adhésion explicite à une idée toxique" in categories()


def test_steps_in_the_release_order_and_what_each_sees(data):
    assert step_keys() == ("explication", "ton", "intention", "categorie", "labels", "toxicite_score", "conclusion")
    steps = {s.key: s for s in load_steps(data, certainty=True)}
    assert list(steps) == [
        "explication",
        "ton",
        "intention",
        "categorie",
        "labels",
        "toxicite_score",
        "certitude",
        "conclusion",
    ]
    assert steps["conclusion"].system == data.path("toxifrench/cot_headers/conclusion.txt").read_text("utf-8")
    names = {k: s.name for k, s in steps.items()}
    blocks = {
        "explication": "E",
        "ton": "T",
        "intention": "I",
        "categorie": "C",
        "labels": "L",
        "toxicite_score": "Note : 2/10",
    }
    assert user_message(steps["intention"], "salut", blocks, names) == (
        "Voici les informations à analyser :\n\n**Message** :\n« salut »\n\n**Explication** :\n« E »\n\n**Ton** :\n« T »\n\n"
        "Ta tâche est d’identifier les intentions principales du message de manière nuancée.\n\n"
    )
    assert user_message(steps["certitude"], "salut", blocks, names) == (
        "Voici les informations à analyser :\n\n**Score de toxicité** :\n« Note : 2/10 »\n\nTa tâche est d’évaluer la certitude du score de toxicité.\n\n"
    )


@pytest.mark.parametrize(
    "step, text, status, value",
    [
        (
            "categorie",
            'Catégories : ["Micro-agression", "Dog-whistle"]\nJustification : x',
            "ok",
            ["Micro-agression", "Dog-whistle"],
        ),
        ("categorie", "Catégories : []\nJustification : rien", "ok", []),
        (
            "categorie",
            "**Catégories** : ['Evocation d'un propos toxique avec adhésion']",
            "unparseable",
            None,
        ),  # not a list of quoted names
        (
            "categorie",
            'Catégories : ["evocation d\'un propos toxique avec adhésion"]',
            "ok",
            ["Évocation d’un propos toxique avec adhésion"],
        ),
        (
            "categorie",
            'Catégories : ["Adhésion explicite à une idée toxique", "Provocation"]',
            "off_list",
            ["Adhésion explicite à une idée toxique"],
        ),
        ("categorie", "Pas de catégorie.", "unparseable", None),
        ("labels", "Labels : S0/H2/V0/R0/A2/I2  \nJustification : x", "ok", ("S0", "H2", "V0", "R0", "A2", "I2")),
        ("labels", "Labels : V2/A3/I3/H1/S0/R0", "ok", ("S0", "H1", "V2", "R0", "A3", "I3")),
        ("labels", "Labels : S0/H2/V0/R0/A2", "unparseable", None),
        ("labels", "Labels : S0/S1/H2/V0/R0/A2/I2", "unparseable", None),
        ("toxicite_score", "Note : 4/10  \nJustification : moquerie", "ok", 4),
        ("toxicite_score", "**Note** : 10/10", "ok", 10),
        ("toxicite_score", "Note : 4.5/10", "unparseable", None),
        ("toxicite_score", "Note : 11/10", "unparseable", None),
        ("toxicite_score", "Note : 3/10 ou Note : 5/10", "unparseable", None),
        ("toxicite_score", "Je dirais assez toxique.", "unparseable", None),
        ("certitude", "Certitude : élevée", "ok", "élevée"),
        ("certitude", "Certitude : Moyenne", "ok", "moyenne"),
        ("certitude", "Plutôt sûr.", "unparseable", None),
        ("conclusion", "Conclusion : 1", "ok", 1),
        ("conclusion", "**Conclusion** : 0", "ok", 0),
        ("conclusion", "Conclusion : toxique", "unparseable", None),
        ("explication", "  ", "unparseable", None),
    ],
)
def test_known_blocks(step, text, status, value):
    parsed = parse_block(step, text)
    assert (parsed.status, parsed.value) == (status, value)
    if status != "ok":
        assert parsed.problem


def test_every_release_block_parses_or_says_why(data):
    """The release's 500 recorded blocks: every score and labels block parses (one writes its
    levels as V/A/I/H/S/R, one a level a line); 488 category blocks are on the closed list, 12
    name a category that is not (their own status, `off_list`)."""
    rows = read_rows(data.path(AGREEMENT))
    counts = {step: {} for step in ("explication", "ton", "intention", "categorie", "labels", "toxicite_score")}
    for row in rows:
        for step in counts:
            status = parse_block(step, row[step]).status
            counts[step][status] = counts[step].get(status, 0) + 1
    assert counts["categorie"] == {"ok": 488, "off_list": 12}
    assert all(counts[s] == {"ok": 500} for s in counts if s != "categorie")
    assert all(parse_block("toxicite_score", r["toxicite_score"]).value == int(float(r["note"])) for r in rows)
