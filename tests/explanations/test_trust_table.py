"""The trust table fits the page (issue 17, item 10): one table per classifier, explainers as columns when they
are fewer than the scores, scores as columns otherwise, so a table never has more than 1 + min(both) columns."""

from __future__ import annotations

import re

import pytest

from explanations.templatetags.job_text import trust_tables
from tests.trust_table_seed import CLASSIFIERS, SCORES, trust_job_seed
from tests.unit_fixtures import *  # noqa: F403

pytestmark = pytest.mark.django_db


def entry(explainer: str, rank, **scores) -> dict:
    return {"classifier": "cnn", "classifier_label": "CNN", "explainer": explainer, "explainer_label": explainer.title(),
            "rank": rank, **scores}


def test_few_explainers_are_columns_and_every_score_a_row(zoo, user, client):
    job = trust_job_seed(owner=user, dataset=zoo)
    client.force_login(user)
    html = client.get(f"/jobs/{job.pk}/results/").content.decode()
    tables = re.findall(r'<table class="trust-summary" id="trust-(\w+)">(.*?)</table>', html, re.S)
    assert [name for name, _ in tables] == list(CLASSIFIERS)
    for _, table in tables:
        head = re.search(r"<thead>(.*?)</thead>", table, re.S).group(1)
        assert head.count("<th") == 1 + len(SCORES)  # Score + LIME, SHAP, Anchors, Counterfactuals
        assert ">LIME<" in head and ">Counterfactuals<" in head
        rows = re.findall(r'<th scope="row"[^>]*>([^<]+)</th>', table)
        assert rows[0] == "Rank" and len(rows) == 1 + 14  # the rank, then all 14 tabular scores
        assert "Deletion AUC ↓" in rows and "Counterfactuals valid ↑" in rows and "Distance to a real row ↓" in rows
        assert 'title="Deletion AUC (lower is better)"' in table
        assert table.count(">best<") == 1 and "&lt;0.001" in table and "e-0" not in table


def test_many_explainers_are_rows_and_the_scores_columns():
    names = ["lime", "shap", "saliency", "deeplift", "occlusion"]
    summary = {"measured": ["deletion_auc", "sanity"], "metrics": [],
               "table": [entry(name, i + 1, deletion_auc=0.1 * i, sanity=0.5) for i, name in enumerate(names)]}
    (table,) = trust_tables(summary)
    assert table["corner"] == "Explainer" and [h["text"] for h in table["head"]] == ["Rank", "Deletion AUC ↓", "Sanity ↓"]
    assert [r["head"]["text"] for r in table["rows"]] == [n.title() for n in names]
    assert table["rows"][0]["cells"][0]["rank"] == 1 and table["rows"][0]["cells"][1]["text"] == "0.00"


def test_unranked_explainers_say_so_in_either_layout():
    summary = {"measured": [], "metrics": [], "table": [entry("lime", None), entry("shap", None)]}
    (table,) = trust_tables(summary)
    assert [r["cells"][0]["rank"] for r in table["rows"]] == [None, None]
    assert all(len(r["cells"]) == 1 for r in table["rows"])  # no score columns at all


def test_the_report_turns_its_trust_table_the_same_way(zoo, user, api):
    job = trust_job_seed(owner=user, dataset=zoo)
    html = api.get(f"/api/jobs/{job.pk}/report/").content.decode()
    tables = re.findall(r'<table class="trust-summary">(.*?)</table>', html, re.S)
    assert len(tables) == len(CLASSIFIERS)
    head = re.search(r"<thead>(.*?)</thead>", tables[0], re.S).group(1)
    assert head.count("<th") == 1 + len(SCORES) and "<th>Rank</th>" in tables[0] and "1 (best)" in tables[0]
