"""The README's benchmark table is generated from the committed results.json and kept in step with it."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("readme_results", REPO / "scripts" / "readme_results.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_readme_table_is_what_the_committed_results_give():
    rr = _script()
    assert rr.main(["--check"]) == 0, "README.md is stale: run `python scripts/readme_results.py`"


def test_block_quotes_every_run_and_the_intervals(tmp_path):
    rr = _script()

    def run(method, seed, m):
        return {
            "env": "drive",
            "target_domain": "target3",
            "method": method,
            "label": method.title(),
            "seed": seed,
            "budget_steps": 540,
            "eval_split": "test",
            "metrics": {"map50": m, "recall@20": m / 2},
        }

    interval = {"diff": 0.2, "low": 0.1, "high": 0.3}
    results = {
        "profile": {"name": "full", "envs": ["drive", "clevr"], "methods": ["source_only", "sim2sg_full"]},
        "target_domains": ["target3"],
        "runs": [run("source_only", 0, 0.1), run("source_only", 1, 0.3), run("sim2sg_full", 0, 0.5)],
        "gains_vs_source_only": [
            {"env": "drive", "target_domain": "target3", "method": "sim2sg_full", "mAP50": interval, "R@20": interval}
        ],
    }
    text = rr.block(results, "x/results.json")
    assert "| drive | target3 | Source_Only | 0.200 ± 0.141 | 0.100 ± 0.071 | n/a | n/a | 2 | 540 |" in text
    assert "| drive | target3 | Sim2Sg_Full | 0.500 | 0.250 | +0.200 [+0.100, +0.300] |" in text
    # an ablation row stays in the results folder's table, named in the block
    results["profile"]["methods"].append("bn_target")
    results["runs"].append(run("bn_target", 0, 0.3))
    text = rr.block(results, "x/results.json")
    assert "Bn_Target" not in text and "also has the rows `bn_target`" in text
    results["profile"]["methods"].pop()
    results["runs"].pop()
    assert "clevr" not in text  # no runs, no rows
    readme, headline = tmp_path / "results.md", tmp_path / "README.md"
    results_file = tmp_path / "results.json"
    results_file.write_text(json.dumps(results))
    readme.write_text(f"intro\n{rr.BEGIN}\nold\n{rr.END}\noutro\n")
    headline.write_text(f"top\n{rr.HEADLINE_BEGIN}\nold\n{rr.HEADLINE_END}\nend\n")
    args = ["--results", str(results_file), "--readme", str(readme), "--headline-readme", str(headline)]
    assert rr.main([*args, "--check"]) == 1
    assert rr.main(args) == 0 and rr.main([*args, "--check"]) == 0
    assert readme.read_text().startswith("intro\n") and readme.read_text().endswith("\noutro\n")
    # the headline: source only against full Sim2SG with the interval, one line per environment and target
    assert "| drive | target3 | 0.200 ± 0.141 | 0.500 | +0.200 [+0.100, +0.300] | 1 |" in headline.read_text()
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="markers"):
        rr.main(args)


def test_readme_parameter_tables_are_what_the_node_specs_give():
    spec = importlib.util.spec_from_file_location("readme_params", REPO / "scripts" / "readme_params.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--check"]) == 0, "README.md's parameter tables are stale: run `python scripts/readme_params.py`"
    # every perception_node parameter has its row, with its default
    from sim2sg_ros.params import PERCEPTION_PARAMS

    text = (REPO / "README.md").read_text()
    for p in PERCEPTION_PARAMS:
        assert f"| `{p.name}` | {mod._default(p.default)} |" in text
