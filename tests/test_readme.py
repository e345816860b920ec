"""The README's methods table names every registered method with exactly its stages, so a
stage added to a method cannot leave the README behind."""

from helpers import REPO

from facecluster import registry


def methods_table() -> dict[str, list[str]]:
    """method -> its stages, from the README's table of methods (rows ``| `name` | stages |``)."""
    text = (REPO / "README.md").read_text()
    start = text.index("| method | stages | what it is | library |")
    rows = {}
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("| `"):
            break
        name, stages = (cell.strip() for cell in line.split("|")[1:3])
        rows[name.strip("`")] = [s.strip() for s in stages.split(",")]
    return rows


def test_the_readme_lists_every_method_with_its_stages():
    table = methods_table()
    builtin = set(registry.names()) - set(registry._EXTERNAL)  # not a test's toy method
    assert set(table) == builtin, "a method missing from the README, or gone"
    for name, stages in table.items():
        assert stages == [s.name for s in registry.get(name).stages], name

