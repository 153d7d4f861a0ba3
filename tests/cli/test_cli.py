"""The command line: light start-up, and what `data list` / `data show` tell a user."""

import json
import subprocess
import sys

HEAVY = ["torch", "transformers", "sklearn", "scipy", "openai", "mistralai", "google.genai", "anthropic"]


def test_help_imports_no_heavy_library():
    code = (
        "import sys\n"
        "from toxbench.cli import app\n"
        "from typer.testing import CliRunner\n"
        "result = CliRunner().invoke(app, ['--help'])\n"
        "assert result.exit_code == 0 and 'leaderboard' in result.output, result.output\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _commands(command, path=("toxbench",)):
    """(path, click command) for every command and group under `command`."""
    yield path, command
    for name, sub in getattr(command, "commands", {}).items():
        yield from _commands(sub, (*path, name))


def test_help_texts_show_as_written(cli):
    """Command listings give each command's first paragraph as one line (rich kept a docstring's
    line breaks there, breaking sentences mid-line), and no help text holds something rich would
    take for markup and swallow (a "[certainty]" once vanished from `annotate --help`)."""
    from rich.markup import render
    from typer.main import get_command

    from toxbench.cli import app

    checked = 0
    for path, command in _commands(get_command(app)):
        texts = [command.help or "", command.short_help or ""] + [
            getattr(p, "help", None) or "" for p in command.params
        ]
        for text in texts:
            assert render(text).plain == text, f"{' '.join(path)}: rich would print {render(text).plain!r} for {text!r}"
        if len(path) > 1 and not getattr(command, "commands", None):
            assert command.short_help and "\n" not in command.short_help, (
                f"{' '.join(path)}: listing {command.short_help!r}"
            )
            checked += 1
    assert checked >= 30
    code, out, _ = cli("annotate", "--help")
    assert (
        code == 0
        and "(explanation, tone, intention, category, labels, score, certainty with --certainty, conclusion)" in out
    )


def test_version(cli):
    code, out, _ = cli("--version")
    assert code == 0 and out.strip() == "toxbench 0.1.0"


def test_data_list_shows_each_dataset_file_and_its_status(cli, data_root):
    code, out, _ = cli("data", "list", "--data-dir", data_root)
    assert code == 0
    assert f"data directory: {data_root.resolve()} (from --data-dir)" in out
    table_rows = [line for line in out.splitlines() if line.startswith("│")]
    for name in ("toxifrench", "rtplx-fr", "jigsaw-en", "jigsaw-fr", "hateday-fr", "rtplx:FR", "rtplx:ZH-Hans"):
        row = next(line for line in table_rows if line.startswith(f"│ {name} "))
        assert row.rstrip(" │").endswith("ok"), row
    assert "published prediction files: 126 (126 ok, 0 missing, 0 mismatch)" in out


def test_data_dir_from_environment(cli, data_root, monkeypatch):
    monkeypatch.setenv("TOXBENCH_DATA_DIR", str(data_root))
    code, out, _ = cli("data", "list")
    assert code == 0 and "(from TOXBENCH_DATA_DIR)" in out


def test_data_show_builtin(cli, data_root):
    code, out, _ = cli("data", "show", "toxifrench", "--data-dir", data_root, "--rows", "2")
    assert code == 0
    assert "samples: 1388   toxic (1): 694 (50.0%)   non-toxic (0): 694 (50.0%)" in out
    assert "languages: fr 1388" in out and "anon_msg_468ffd36870c" in out


def test_data_show_user_file(cli, data_root, tmp_path):
    f = tmp_path / "comments.csv"
    f.write_text("id,text,label\n1,tu es nul,1\n2,merci beaucoup,0\n3,quelle horreur,1\n", encoding="utf-8")
    code, out, _ = cli("data", "show", f, "--data-dir", data_root, "--lang", "fr")
    assert code == 0
    assert "samples: 3   toxic (1): 2 (66.7%)   non-toxic (0): 1 (33.3%)" in out and "languages: fr 3" in out


def test_unknown_dataset_exit_2(cli, data_root):
    code, _, err = cli("data", "show", "toxifrnech", "--data-dir", data_root)
    assert code == 2 and err.startswith("error: unknown dataset 'toxifrnech'") and err.count("\n") == 1


def test_data_training_set_reports_what_the_selection_leaves_out(cli, data_root):
    code, out, err = cli("data", "training-set", "--data-dir", data_root)
    assert code == 0, err
    assert "annotated rows read: 1881   kept: 1371" in out and "near copy 3" in out
    assert (
        "jigsaw row 65bd67fef6fcbcc5 ~ jigsaw-en sample 6751bbf92ec5c24a" in out
        and "jigsaw: 871 toxic, 1 non-toxic" in out
    )
    code, out, _ = cli("data", "training-set", "--data-dir", data_root, "--json")
    summary = json.loads(out)
    assert summary["kept"] == 1371 and len(summary["near_copies"]) == 3
