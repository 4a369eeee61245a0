"""`pointset models`: the table and the JSON list."""

from __future__ import annotations

import json


def test_models_json_lists_every_model_with_parameter_counts(cli):
    result = cli(["models", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    rows = {row["name"]: row for row in doc["models"]}
    expected = {"mlp": "fixed", "rnn": "presence", "dspn": "presence", "tspn": "size", "slot": "presence",
                "queries": "presence"}
    for name, cardinality in expected.items():
        assert rows[name]["kind"] == "decoder"
        assert rows[name]["cardinality"] == cardinality
        assert rows[name]["default_encoder"] in ("deepsets", "set_transformer")
        assert rows[name]["params"] > 1000
    for name in ("deepsets", "set_transformer"):
        assert rows[name]["kind"] == "encoder" and rows[name]["params"] > 1000
    # A decoder row counts its default encoder too.
    assert rows["tspn"]["params"] > rows["set_transformer"]["params"]
    assert doc["data"] == {"dim": 2, "n_max": 342, "n_classes": 10}


def test_models_table(cli):
    result = cli(["models"])
    assert result.exit_code == 0, result.stderr
    for name in ("mlp", "rnn", "dspn", "tspn", "slot", "queries", "deepsets"):
        assert name in result.stdout
