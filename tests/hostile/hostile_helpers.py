"""What the hostile-input tests share."""


def one_line_refusal(result) -> str:
    """The stderr of a command that refused its input as toxbench promises: exit 2, one line, no traceback."""
    code, out, err = result
    assert code == 2, (code, out, err)
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err, err
    return err
