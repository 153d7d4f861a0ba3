"""What the hostile-input tests share."""


def one_line_refusal(result) -> str:
    """The error line of a command that refused its input as toxbench promises: exit 2, one line
    (after any progress it printed), no traceback."""
    code, out, err = result
    assert code == 2, (code, out, err)
    assert "Traceback" not in err and err.endswith("\n"), err
    last = err.rstrip("\n").rsplit("\n", 1)[-1]
    assert last.startswith("error: ") and err.count("error: ") == 1, err
    return last + "\n"
