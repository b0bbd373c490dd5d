"""Every fenced code block of README.md and docs/*.md runs as written (issue 12).

The rules, per fenced block, by its language tag:

- ``python``: executed.  The blocks of one file run top to bottom in one namespace (a later
  block may use the names of an earlier one), with ``__name__ == "__main__"`` (so an
  ``if __name__ == "__main__":`` guard runs its body), in a fresh temporary working directory,
  with matplotlib's Agg backend.  A block that raises fails the test; a result a block states
  is an ``assert`` in it, so a wrong stated value fails the test too.
- ``bash``, ``sh``, ``console``: one command per line (a ``$ `` prompt is dropped, a trailing
  backslash continues the line, ``#`` starts a comment).  ``pip install ...`` and ``pytest ...``
  lines are skipped by rule: they install fmtlab or run this very suite.  Every other line must
  be an ``fmtlab`` command, and the real parser (``fmtlab.cli.build_parser()``) must accept it.
  Unless its subcommand is in ``PARSE_ONLY`` (runs that take minutes), it is then run for
  real through ``fmtlab.cli.main`` (the console script's entry point) in the file's working
  directory, and must exit 0 (an unexpected exception fails the test with its traceback).
  A command line already run by an earlier document, reading no ``--input`` file, is not run
  again (its run cannot differ).  Python and shell blocks share the directory and run in
  document order, so a command may read a file that a Python block above it wrote.
- ``text``: output samples, synopses, tables: not code, not run.  One check all the same: a
  ``text`` block that starts with ``fmtlab SUBCOMMAND`` is a usage synopsis, and every
  ``--flag`` in it must be one that subcommand's ``--help`` lists.
- Any other tag, or none: the test fails (an untagged block would silently escape it).

Commands quoted inline in the prose (a code span that starts with ``fmtlab``) are parsed too,
not run; a span with ": " in it quotes a message (``fmtlab sweep: error: ...``) and is left out.

Clusters the examples address (a Dask scheduler, a Ray cluster) cannot be reached from a test,
so ``dask.distributed`` and ``ray`` are replaced by small stand-ins that run each submitted
call here, after a pickle round trip of the call (as a cluster would ship it).
"""
from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import io
import pathlib
import pickle
import re
import shlex
import sys
import types

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

PYTHON_TAGS = {"python"}
SHELL_TAGS = {"bash", "sh", "console"}
TEXT_TAGS = {"text"}
KNOWN_TAGS = PYTHON_TAGS | SHELL_TAGS | TEXT_TAGS

# Lines of shell blocks that are not fmtlab commands and are skipped by rule.
SKIPPED_COMMANDS = ("pip install", "pytest")
# fmtlab subcommands that are parsed but not run: their documented runs take minutes.
PARSE_ONLY = {"drift"}
# Command lines already run in this session (see the module docstring).
_ALREADY_RUN: set[tuple[str, ...]] = set()

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclasses.dataclass
class Block:
    path: pathlib.Path
    line: int          # 1-based line number of the opening fence
    tag: str           # first word of the info string, lower case; "" when there is none
    text: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path}:{self.line}"


def fenced_blocks(text: str, path: pathlib.Path = ROOT / "<text>") -> list[Block]:
    """The fenced code blocks of a Markdown text, in order (CommonMark fences: three or more
    backticks or tildes, closed by a fence of the same character at least as long).  An
    unclosed fence is an error, since everything after it would silently stop being checked."""
    blocks = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        info = opening["info"].strip()
        start = index
        body = []
        index += 1
        while index < len(lines):
            closing = FENCE.match(lines[index])
            if closing and closing["fence"][0] == fence[0] and len(closing["fence"]) >= len(fence) \
                    and not closing["info"].strip():
                break
            line = lines[index]
            # Content of an indented fence (in a list item) loses up to the fence's indentation.
            body.append(line[min(indent, len(line) - len(line.lstrip())):])
            index += 1
        else:
            raise AssertionError(f"{path}:{start + 1}: code fence {fence!r} is never closed")
        tag = info.split()[0].lower() if info else ""
        blocks.append(Block(path, start + 1, tag, "\n".join(body) + "\n"))
        index += 1
    return blocks


def check_tag(block: Block) -> None:
    if block.tag not in KNOWN_TAGS:
        shown = f"```{block.tag}" if block.tag else "``` (no language tag)"
        raise AssertionError(
            f"{block.where}: code block {shown} has a tag this test does not know; tag it python "
            f"(run), bash/sh/console (fmtlab commands, parsed and run) or text (not code)")


def shell_commands(block: Block) -> list[tuple[int, list[str]]]:
    """(line number, argv) of each fmtlab command of a shell block; skipped lines left out."""
    commands = []
    pending, first_line = "", None
    for offset, raw in enumerate(block.text.splitlines(), start=1):
        line = raw.strip()
        if block.tag == "console" and line.startswith("$ "):
            line = line[2:]
        if first_line is None:
            first_line = block.line + offset
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        try:
            argv = shlex.split(line, comments=True)
        except ValueError as error:
            raise AssertionError(f"{block.path.name}:{first_line}: cannot split {line!r}: {error}") from None
        number, first_line = first_line, None
        if not argv or " ".join(argv).startswith(SKIPPED_COMMANDS):
            continue
        if argv[0] != "fmtlab":
            raise AssertionError(
                f"{block.path.name}:{number}: {line!r} is neither an fmtlab command nor a skipped "
                f"{' / '.join(SKIPPED_COMMANDS)} line; put output in a ```text block")
        commands.append((number, argv))
    return commands


def parse_command(argv: list[str], where: str):
    """The namespace fmtlab's real parser makes of ``argv`` (without the leading "fmtlab")."""
    from fmtlab import cli

    try:
        return cli.build_parser().parse_args(argv[1:])
    except SystemExit as exit_:
        if exit_.code == 0:  # --help, --version: accepted, and they print only
            return None
        raise AssertionError(f"{where}: `{shlex.join(argv)}` is rejected by fmtlab's parser "
                             f"(exit status {exit_.code})") from None


def run_command(argv: list[str], where: str) -> str:
    """Run ``argv`` through fmtlab's entry point (the ``fmtlab`` console script's ``main``) in
    this process and working directory; return what it printed.  In-process, so that a
    dozen commands do not each pay for a new interpreter and a new worker server."""
    from fmtlab import cli

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        status = cli.main(argv[1:])
    if status != 0:
        raise AssertionError(f"{where}: `{shlex.join(argv)}` exited {status}\n"
                             f"stdout:\n{stdout.getvalue()[-3000:]}\nstderr:\n{stderr.getvalue()[-3000:]}")
    return stdout.getvalue()


def run_python(block: Block, namespace: dict) -> None:
    code = compile(block.text, f"{block.where} (```python)", "exec")
    exec(code, namespace)  # noqa: S102 - running the documentation is the point of this test


def inline_commands(text: str) -> list[str]:
    """The code spans of ``text`` that quote an fmtlab command line (see the module docstring)."""
    return [span for span in re.findall(r"(?<!`)`(fmtlab(?: [^`]*)?)`(?!`)", text) if ": " not in span]


def command_help(words: list[str]) -> str:
    """What ``fmtlab WORDS --help`` prints."""
    from fmtlab import cli

    stream = io.StringIO()
    with contextlib.redirect_stdout(stream), pytest.raises(SystemExit):
        cli.build_parser().parse_args([*words, "--help"])
    return stream.getvalue()


def check_synopsis(block: Block) -> None:
    """Every --flag of a usage synopsis (a text block starting "fmtlab SUBCOMMAND") is real."""
    lines = block.text.strip().splitlines()
    if not lines or not lines[0].startswith("fmtlab "):
        return
    words = []
    for word in lines[0].split()[1:]:
        if not re.fullmatch(r"[a-z][a-z0-9-]*", word):
            break
        words.append(word)
    help_text = command_help(words)
    for flag in sorted(set(re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", block.text))):
        if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", help_text):
            raise AssertionError(f"{block.where}: the synopsis names {flag}, which "
                                 f"`fmtlab {' '.join(words)} --help` does not list")


# ---- stand-ins for the clusters the examples address ------------------------------------------

# Calls each stand-in ran, by cluster ("dask", "ray"): an example whose executor received no
# task would show that fl.sweep ignored it.
_CLUSTER_CALLS: collections.Counter = collections.Counter()


def _done_future(cluster, function, args, kwargs) -> concurrent.futures.Future:
    """Ship the call as a cluster would (pickled), run it here, return a finished Future."""
    _CLUSTER_CALLS[cluster] += 1
    function, args, kwargs = pickle.loads(pickle.dumps((function, args, kwargs)))
    future = concurrent.futures.Future()
    try:
        future.set_result(function(*args, **kwargs))
    except Exception as error:  # noqa: BLE001 - handed to the caller through the Future
        future.set_exception(error)
    return future


class _LocalExecutor(concurrent.futures.Executor):
    def submit(self, function, /, *args, **kwargs):
        return _done_future("dask", function, args, kwargs)


def _fake_distributed() -> dict:
    class Client:
        def __init__(self, address=None, **options):
            self.address = address

        def get_executor(self, **options):
            return _LocalExecutor()

    distributed = types.ModuleType("dask.distributed")
    distributed.Client = Client
    dask = types.ModuleType("dask")
    dask.distributed = distributed
    return {"dask": dask, "dask.distributed": distributed, "distributed": distributed}


def _fake_ray() -> dict:
    class ObjectRef:
        def __init__(self, future):
            self._future = future

        def future(self):
            return self._future

    class RemoteFunction:
        def __init__(self, function):
            self._function = function

        def remote(self, *args, **kwargs):
            return ObjectRef(_done_future("ray", self._function, args, kwargs))

    ray = types.ModuleType("ray")
    ray.remote = RemoteFunction
    ray.init = lambda address=None, **options: None
    return {"ray": ray}


# ---- the tests -------------------------------------------------------------------------------

def test_every_document_is_found():
    names = {path.relative_to(ROOT).as_posix() for path in DOCUMENTS}
    assert {"README.md", "docs/formats.md", "docs/tensor-cores.md", "docs/sweep.md", "docs/drift.md",
            "docs/performance.md"} <= names


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_every_block_has_a_known_tag(path):
    for block in fenced_blocks(path.read_text(encoding="utf-8"), path):
        check_tag(block)


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_relative_links_resolve(path):
    text = path.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (path.parent / target).exists(), f"{path.relative_to(ROOT)}: link to {target} does not resolve"


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_inline_commands_parse(path):
    text = path.read_text(encoding="utf-8")
    for block in fenced_blocks(text, path):  # spans inside code blocks are the blocks' business
        text = text.replace(block.text, "")
    for span in inline_commands(text):
        parse_command(shlex.split(span), f"{path.relative_to(ROOT)}: inline `{span}`")


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: path.relative_to(ROOT).as_posix())
def test_blocks_run(path, tmp_path, monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    for name, module in {**_fake_distributed(), **_fake_ray()}.items():
        monkeypatch.setitem(sys.modules, name, module)
    _CLUSTER_CALLS.clear()
    namespace = {"__name__": "__main__"}
    blocks = fenced_blocks(path.read_text(encoding="utf-8"), path)
    for block in blocks:
        check_tag(block)
        if block.tag in PYTHON_TAGS:
            run_python(block, namespace)
        elif block.tag in TEXT_TAGS:
            check_synopsis(block)
        elif block.tag in SHELL_TAGS:
            for number, argv in shell_commands(block):
                where = f"{path.relative_to(ROOT)}:{number}"
                arguments = parse_command(argv, where)
                if arguments is None or arguments.command in PARSE_ONLY or tuple(argv) in _ALREADY_RUN:
                    continue
                run_command(argv, where)
                if "--input" not in argv:
                    _ALREADY_RUN.add(tuple(argv))
    python = "\n".join(block.text for block in blocks if block.tag in PYTHON_TAGS)
    for cluster in sorted(set(re.findall(r"^\s*(?:from|import)\s+(dask|ray)\b", python, re.MULTILINE))):
        assert _CLUSTER_CALLS[cluster] > 0, f"{path.relative_to(ROOT)}: the {cluster} example's executor ran no task"
    # A printed figure left open would leak into the next document's run.
    import matplotlib.pyplot as plt

    plt.close("all")


# ---- the checker itself can fail -------------------------------------------------------------

SAMPLE = """\
intro
```python
x = 1
```
  ~~~~ text
  an output sample
  ~~~~
```
untagged
```
"""


def test_fences_are_found_with_tags_and_lines():
    blocks = fenced_blocks(SAMPLE)
    assert [(block.line, block.tag, block.text) for block in blocks] == [
        (2, "python", "x = 1\n"), (5, "text", "an output sample\n"), (8, "", "untagged\n")]


@pytest.mark.parametrize("tag", ["", "pyhton", "shell-session", "json"])
def test_an_unknown_or_missing_tag_fails(tag):
    with pytest.raises(AssertionError, match="tag this test does not know"):
        check_tag(Block(ROOT / "README.md", 1, tag, "x\n"))


def test_an_unclosed_fence_fails():
    with pytest.raises(AssertionError, match="never closed"):
        fenced_blocks("```python\nx = 1\n")


def test_shell_lines_are_split_skipped_and_checked():
    block = Block(ROOT / "README.md", 10, "console", (
        "$ pip install -e \".[test]\"\n"
        "pytest -q\n"
        "\n"
        "fmtlab sweep --formats \"bf16,e5m2\"   # a comment\n"
        "fmtlab sweep-mma --k 16 \\\n"
        "    --models exact\n"))
    assert shell_commands(block) == [
        (14, ["fmtlab", "sweep", "--formats", "bf16,e5m2"]),
        (15, ["fmtlab", "sweep-mma", "--k", "16", "--models", "exact"])]
    with pytest.raises(AssertionError, match="neither an fmtlab command"):
        shell_commands(Block(ROOT / "README.md", 1, "bash", "python -m something\n"))


def test_a_command_the_parser_rejects_fails():
    assert parse_command(["fmtlab", "sweep", "--size", "10"], "x").size == 10
    with pytest.raises(AssertionError, match="rejected by fmtlab's parser"):
        parse_command(["fmtlab", "sweep", "--no-such-flag"], "README.md:1")
    with pytest.raises(AssertionError, match="rejected by fmtlab's parser"):
        parse_command(["fmtlab", "no-such-command"], "README.md:1")


def test_a_command_runs_and_a_failing_one_fails(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert "fp16" in run_command(["fmtlab", "formats"], "README.md:1")
    with pytest.raises(AssertionError, match="exited 2"):
        run_command(["fmtlab", "sweep", "--input", "missing.npy"], "README.md:1")


def test_a_raising_or_wrong_python_block_fails():
    with pytest.raises(ZeroDivisionError):
        run_python(Block(ROOT / "README.md", 1, "python", "1 / 0\n"), {})
    with pytest.raises(AssertionError):
        run_python(Block(ROOT / "README.md", 1, "python", "assert 2**-9 == 0.002\n"), {})
    namespace = {}
    run_python(Block(ROOT / "README.md", 1, "python", "a = 2\n"), namespace)
    run_python(Block(ROOT / "README.md", 3, "python", "b = a + 1\n"), namespace)
    assert namespace["b"] == 3


def test_a_synopsis_with_a_flag_that_does_not_exist_fails():
    check_synopsis(Block(ROOT / "README.md", 1, "text", "fmtlab sweep [--size N] [--out DIR]\n"))
    check_synopsis(Block(ROOT / "README.md", 1, "text", "16777216 float32 values --not-a-synopsis\n"))
    with pytest.raises(AssertionError, match="names --no-such-flag"):
        check_synopsis(Block(ROOT / "README.md", 1, "text",
                             "fmtlab sweep [--size N]\n             [--no-such-flag]\n"))


def test_inline_commands_are_found():
    text = "Run `fmtlab sweep --size 10`, see `fmtlab sweep: error: ...` and `fl.sweep`; ```fmtlab x```."
    assert inline_commands(text) == ["fmtlab sweep --size 10"]
    assert parse_command(["fmtlab", "--help"], "README.md:1") is None
