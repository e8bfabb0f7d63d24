"""The benchmark figures in README.md and docs/ are what `python -m relayrl_cli.bench.docs` writes from the
committed results files: a hand edit inside a generated block, or a results file changed without running
the command, fails here."""

from __future__ import annotations

import json
import shutil

import pytest

from relayrl_cli.bench import docs


@pytest.mark.parametrize("doc", docs.DOCS, ids=lambda p: p.name)
def test_generated_blocks_match_the_results(doc):
    text = doc.read_text()
    assert docs.render_doc(text, docs.link_from(doc)) == text, (
        f"{doc.name} differs from benchmarks/results: run `python -m relayrl_cli.bench.docs`"
    )


def test_every_renderer_has_its_block_in_a_document():
    used = [name for doc in docs.DOCS for name in docs.names_in(doc.read_text())]
    assert sorted(set(used)) == sorted(docs.SECTIONS) and len(used) == len(set(used))


def test_a_changed_figure_is_rewritten_from_the_file_and_check_reports_it(tmp_path, monkeypatch):
    readme = docs.REPO / "README.md"
    text = readme.read_text()
    ratio = json.loads((docs.RESULTS / "bench.json").read_text())["vs_sb3"]["steps_per_second_ratio"]
    figure = f"| {ratio:.1f}x |"  # the headline ratio, as the performance block writes it
    tampered = text.replace(figure, f"| {ratio + 3:.1f}x |", 1)
    assert tampered != text
    assert docs.render_doc(tampered, "benchmarks/results/") == text

    copy = tmp_path / "README.md"
    copy.write_text(tampered)
    monkeypatch.setattr(docs, "DOCS", [copy])
    monkeypatch.setattr(docs, "REPO", tmp_path)
    assert docs.main(["--check"]) == 1 and copy.read_text() == tampered  # --check writes nothing
    assert docs.main([]) == 0 and docs.main(["--check"]) == 0


def test_a_results_change_shows_in_the_text(tmp_path, monkeypatch):
    results = tmp_path / "results"
    shutil.copytree(docs.RESULTS, results)
    bench = json.loads((results / "bench.json").read_text())
    bench["vs_sb3"]["steps_per_second_ratio"] = 99.04
    (results / "bench.json").write_text(json.dumps(bench))
    monkeypatch.setattr(docs, "RESULTS", results)
    assert "| 99.0x |" in docs.render("performance", "benchmarks/results/")


def test_an_unknown_block_fails_loudly():
    with pytest.raises(KeyError, match="no renderer"):
        docs.render_doc("<!-- generated:nope (x) -->\n<!-- /generated:nope -->", "")
