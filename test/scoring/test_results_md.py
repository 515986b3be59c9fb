"""RESULTS.md sections: the ablation tables and stage 13's report each replace only their own text."""
from espnet_speechllm.scoring.results_md import read_sections, replace_section, write_keeping_sections


def test_replace_appends_then_replaces_in_place(tmp_path):
    out = tmp_path / "RESULTS.md"
    out.write_text("# RESULTS\n\nstage 13 tables\n")
    replace_section(out, "ablations", "## Ablations\nv1")
    replace_section(out, "other", "## Other\nx")
    replace_section(out, "ablations", "## Ablations\nv2")
    text = out.read_text()
    assert text.startswith("# RESULTS\n\nstage 13 tables\n")
    assert "v1" not in text and text.count("<!-- ablations:begin -->") == 1
    assert text.index("v2") < text.index("## Other")  # replaced where it was
    assert set(read_sections(out)) == {"ablations", "other"}


def test_rewrite_keeps_sections(tmp_path):
    out = tmp_path / "RESULTS.md"
    replace_section(out, "ablations", "## Ablations\ntable")
    write_keeping_sections(out, "# RESULTS\n\nnew report\n")
    text = out.read_text()
    assert text.startswith("# RESULTS\n\nnew report\n") and "## Ablations\ntable" in text
    write_keeping_sections(out, "# RESULTS\n\nnewer\n")
    assert out.read_text().count("<!-- ablations:begin -->") == 1
