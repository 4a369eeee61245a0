"""`pointset models`: the table and the JSON list."""

from __future__ import annotations

import json

from pointset_cli.models import registry


def test_models_json_lists_every_model_with_parameter_counts(cli):
    result = cli(["models", "--params", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    rows = {row["name"]: row for row in doc["models"]}
    expected = {"mlp": "fixed", "rnn": "presence", "dspn": "presence", "tspn": "size", "slot": "presence",
                "queries": "presence"}
    for name, cardinality in expected.items():
        assert rows[name]["kind"] == "decoder"
        assert rows[name]["cardinality"] == cardinality
        assert rows[name]["default_encoder"] == ("own" if name == "dspn" else registry.get("decoder", name).encoder)
        assert rows[name]["params"] > 1000
    for name in ("deepsets", "set_transformer"):
        assert rows[name]["kind"] == "encoder" and rows[name]["params"] > 1000
    # A decoder row counts its default encoder too.
    assert rows["tspn"]["params"] > rows["set_transformer"]["params"]
    assert doc["data"] == {"dim": 2, "n_max": 342, "n_classes": 10}


def test_models_without_params_traces_nothing(cli, monkeypatch):
    from pointset_cli.models import catalog

    def no_tracing(*args, **kwargs):
        raise AssertionError("listing the models traced one")

    monkeypatch.setattr(catalog, "model_param_count", no_tracing)
    monkeypatch.setattr(catalog, "encoder_param_count", no_tracing)
    catalog.catalog.cache_clear()
    result = cli(["models", "--format", "json"])
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["models"]
    assert {"mlp", "tspn", "gast", "set_transformer"} <= {row["name"] for row in rows}
    assert all("params" not in row and row["description"] for row in rows)


def test_models_table_keeps_names_whole_at_80_columns(cli, monkeypatch):
    from pointset_cli.cli import _common

    monkeypatch.setattr(_common.out_console, "_width", 80)
    result = cli(["models"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    for name in ("mlp", "rnn", "dspn", "tspn", "slot", "queries", "set_transformer"):
        # Each name whole on its own row, once among the facts and once beside its description.
        assert sum(line.split()[:1] == [name] for line in lines) == 2, name
    assert "gradient descent on a set" in result.stdout
