"""The generated parts of the docs never drift from what the code generates:
docs/gallery.md is exactly the output of scripts/gen_gallery.py, and the marked blocks of
docs/architecture.md and docs/rules.md are exactly what scripts/gen_doc_outputs.py puts
there.  To fix a failure, rerun the scripts:

    python scripts/gen_gallery.py && python scripts/gen_doc_outputs.py
"""
import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _script(name):
    spec = importlib.util.spec_from_file_location(f"_sd_{name}", os.path.join(ROOT, "scripts", f"{name}.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _read(*parts):
    with open(os.path.join(ROOT, *parts), encoding="utf-8") as fh:
        return fh.read()


def test_gallery_is_generated():
    expected = _script("gen_gallery").render()
    assert _read("docs", "gallery.md") == expected, \
        "docs/gallery.md is out of date: run python scripts/gen_gallery.py"


def test_gallery_is_deterministic():
    gen = _script("gen_gallery")
    assert gen.render() == gen.render()


def test_doc_outputs_are_current():
    gen = _script("gen_doc_outputs")
    for doc in gen.DOCS:
        text = _read("docs", doc)
        assert gen.render(doc, text) == text, \
            f"docs/{doc} is out of date: run python scripts/gen_doc_outputs.py"


def test_docs_link_to_each_other():
    for doc in ("architecture.md", "rules.md", "gallery.md"):
        assert os.path.exists(os.path.join(ROOT, "docs", doc))
    readme = _read("README.md")
    assert "docs/architecture.md" in readme and "docs/rules.md" in readme and "docs/gallery.md" in readme


def test_readme_tour_output_is_current(tmp_path, capsys):
    """The README's tour: its code, run, prints what the README shows after it."""
    import importlib.util
    readme = _read("README.md")
    tour = readme.split("## A tour", 1)[1]
    code = tour.split("```python\n", 1)[1].split("```", 1)[0]
    shown = tour.split("```\n", 3)[2].split("```", 1)[0]
    path = tmp_path / "readme_tour.py"
    path.write_text(code)
    spec = importlib.util.spec_from_file_location("readme_tour", path)
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    printed = capsys.readouterr().out
    backend_line = printed.splitlines()[1]
    assert backend_line in ("numba", "python")
    # the backend line may differ where Numba is missing; everything else must match
    assert printed.replace(backend_line, "numba", 1).rstrip() == shown.rstrip()
