"""The README and the documentation site say what the code does.

* The site builds with ``mkdocs build --strict`` (links and anchors resolve) and its API pages
  show the public classes; the command-line page shows each command's help as the parser does.
* Every command in a ``bash``/``console`` block of the README, the site and the changelog is
  exercised: run by CI or by tests, or parsed by the real parser of the program it calls.
* The configuration page lists exactly the variables ``config.py`` reads, with their defaults;
  the troubleshooting page has a section for every error; the porting page names every
  parameter of ``make_video``.
* The README stays a front page: its CI markers, its links, and its performance table, which
  must be the benchmark's latest results.
"""

import ast
import inspect
import io
import re
import shlex
import subprocess
import sys
import types
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path

import pytest

from celery_animate import Animator, Settings, errors
from celery_animate.cli.parser import build_parser
from celery_animate.config import CLUSTER_SEGMENT_FRAMES, EMBEDDED_SEGMENT_FRAMES, OBJECT_STORE_VARIABLES

ROOT = Path(__file__).parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
CHANGELOG = ROOT / "CHANGELOG.md"
CI_SCRIPT = ROOT / ".ci" / "run"
CONFIG_PAGE = DOCS / "configuration.md"


def test_the_site_builds_strictly(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    jobs = (tmp_path / "api" / "jobs" / "index.html").read_text()
    for documented in ["RenderJob", "poster", "RenderResult", "Progress", "EmbeddedCluster"]:
        assert documented in jobs
    assert "make_video" in (tmp_path / "api" / "animator" / "index.html").read_text()
    assert "JobCancelled" in (tmp_path / "api" / "errors" / "index.html").read_text()
    # Pages that include other files show them: the changelog, the benchmark's results.
    assert "Performance over the versions" in (tmp_path / "changelog" / "index.html").read_text()
    performance = (tmp_path / "performance" / "index.html").read_text()
    assert "one line 640x480" in performance and "render processes" in performance


def test_the_command_line_page_shows_every_command_as_the_parser_does(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    page = (DOCS / "cli.md").read_text()
    parser = build_parser()
    commands = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    for name, sub in commands.choices.items():
        assert f"## `{name}`" in page
        usage = sub.format_help().replace("usage: celery-animate", "celery-animate").rstrip()
        assert usage in page, f"docs/cli.md is out of date for `{name}`"


# Documented commands ---------------------------------------------------------------------------

#: The languages of fenced blocks that hold commands a reader runs; ``console`` blocks hold
#: them after a ``$ `` prompt.
COMMAND_LANGUAGES = {"bash", "sh", "shell", "console"}
#: The languages of fenced blocks that hold environment settings (``NAME=value``).
ENV_LANGUAGES = {"ini", "dotenv", "env"}


@dataclass(frozen=True)
class Block:
    file: str
    line: int  # of the opening fence, 1-based
    language: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class Command:
    block: Block
    text: str

    def __str__(self) -> str:
        return f"{self.block.file}:{self.block.line}: {self.text}"


def documentation_files() -> list[Path]:
    return [README, CHANGELOG, *sorted(DOCS.rglob("*.md"))]


def fenced_blocks(path: Path) -> list[Block]:
    """Every fenced code block of a Markdown file (fences may be indented, as in lists)."""
    blocks, lines = [], path.read_text().splitlines()
    i = 0
    while i < len(lines):
        opening = re.match(r"^(\s*)(`{3,}|~{3,})\s*([\w+-]*)", lines[i])
        if not opening:
            i += 1
            continue
        indent, fence, language = opening.groups()
        body, j = [], i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            body.append(lines[j][len(indent):] if lines[j].startswith(indent) else lines[j].lstrip())
            j += 1
        blocks.append(Block(str(path.relative_to(ROOT)), i + 1, language.lower(), tuple(body)))
        i = j + 1
    return blocks


def commands_in(block: Block) -> list[Command]:
    """The commands of a block: continuation lines joined, comments and prompts' output dropped."""
    lines = list(block.lines)
    if block.language == "console":
        lines = [line[2:] for line in lines if line.startswith("$ ")]
    commands, pending = [], ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        text = (pending + line).strip()
        pending = ""
        if text and shlex.split(text, comments=True):
            commands.append(Command(block, text))
    return commands


def documented_commands() -> list[Command]:
    return [command for path in documentation_files() for block in fenced_blocks(path)
            if block.language in COMMAND_LANGUAGES for command in commands_in(block)]


@cache
def pyproject() -> str:
    return (ROOT / "pyproject.toml").read_text()


@cache
def extras() -> frozenset[str]:
    section = re.search(r"^\[project\.optional-dependencies\]\n(.*?)(?=^\[)", pyproject(), re.S | re.M)
    assert section, "pyproject.toml has no [project.optional-dependencies]"
    return frozenset(re.findall(r"^([\w-]+)\s*=", section.group(1), re.M))


@cache
def pytest_markers() -> frozenset[str]:
    section = re.search(r"^markers\s*=\s*\[(.*?)\]", pyproject(), re.S | re.M)
    return frozenset(re.findall(r'"(\w+):', section.group(1))) if section else frozenset()


@cache
def settings_variables() -> dict[str, str]:
    """Each variable ``Settings.from_env`` reads, with the field it sets."""
    tree = ast.parse((ROOT / "src" / "celery_animate" / "config.py").read_text())
    from_env = next(node for node in ast.walk(tree)
                    if isinstance(node, ast.FunctionDef) and node.name == "from_env")
    local: dict[str, list[str]] = {}  # `broker = env.get("CELERY_BROKER_URL") ...`
    for node in ast.walk(from_env):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            local[node.targets[0].id] = constants(node.value)
    call = next(node for node in ast.walk(from_env)
                if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "cls")
    found = {}
    for keyword in call.keywords:
        names = constants(keyword.value) or [name for ref in ast.walk(keyword.value)
                                             if isinstance(ref, ast.Name) for name in local.get(ref.id, [])]
        for name in names:
            found[name] = keyword.arg
    return found


def constants(node: ast.AST) -> list[str]:
    return [c.value for c in ast.walk(node) if isinstance(c, ast.Constant) and isinstance(c.value, str)
            and re.fullmatch(r"CELERY_[A-Z0-9_]+", c.value)]


#: Variables of other programs that documented commands set.
OTHER_VARIABLES = {"PYTHONPATH": "Python", "FLOWER_UNAUTHENTICATED_API": "Flower",
                   "IMAGEIO_FFMPEG_EXE": "imageio-ffmpeg, which finds the encoder's ffmpeg"}


@cache
def example_variables() -> frozenset[str]:
    """``CELERY_ANIMATE_*`` variables the examples, their configuration and Compose files read."""
    files = [*ROOT.glob("examples/**/*.py"), *ROOT.glob("config/*"), *ROOT.glob("docker-compose*.yml")]
    return frozenset(name for file in files for name in re.findall(r"CELERY_ANIMATE_\w+", file.read_text()))


def check_variable(name: str) -> None:
    assert (name in settings_variables() or name in OBJECT_STORE_VARIABLES or name in OTHER_VARIABLES
            or name in example_variables()), (
        f"{name} is read by nothing: not by config.py, not an object store's standard variable, "
        "not one of the examples'")


def repo_module(dotted: str) -> Path | None:
    """The file of a module of this repository (``examples.wave``), or None."""
    base = ROOT.joinpath(*dotted.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py",
                      ROOT / "src" / Path(*dotted.split(".")).with_suffix(".py"),
                      ROOT / "src" / Path(*dotted.split(".")) / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def defines(path: Path, name: str) -> bool:
    """Whether a module defines ``name`` at its top level (a class, a function or an assignment)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name == name:
            return True
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == name for t in node.targets):
            return True
    return False


def check_import_path(path: str) -> None:
    """``module:attr`` or ``file.py:Class`` names something this repository defines."""
    location, _, name = path.partition(":")
    assert name, f"{path!r} is not module:name"
    file = ROOT / location if location.endswith(".py") else repo_module(location)
    assert file is not None and file.is_file(), f"{location} is not a module of this repository"
    assert defines(file, name.split(".")[0]), f"{file.relative_to(ROOT)} defines no {name}"


def check_celery_animate(args: list[str]) -> str:
    """The real parser accepts the arguments; an animator they name exists."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            parsed = build_parser().parse_args(args)
    except SystemExit as exc:
        assert exc.code == 0, f"celery-animate's parser refuses it: {err.getvalue().strip()}"
        return "celery-animate's parser (help)"
    for name in ("animator",):
        if getattr(parsed, name, None):
            check_import_path(getattr(parsed, name))
    return "celery-animate's parser"


def click_app() -> types.SimpleNamespace:
    from celery_animate import app

    return types.SimpleNamespace(app=app)


#: (block, node name, queues) of every documented ``celery worker``.
Worker = tuple[Block, str, tuple[str, ...]]


def check_celery(args: list[str], block: Block, workers: list[Worker]) -> str:
    """Celery's own command line (click) parses it; the app exists; a worker is named and has
    a queue; Flower options are Flower's."""
    import click
    from celery.bin.celery import celery

    try:
        top = celery.make_context("celery", list(args), resilient_parsing=False)
    except click.ClickException as exc:
        raise AssertionError(f"celery's parser refuses it: {exc.format_message()}") from None
    app = top.params.get("app")
    assert app, "no -A/--app"
    module, _, attribute = app.partition(":")
    if module != "celery_animate":
        file = repo_module(module)
        assert file is not None, f"-A {app}: no such module in this repository"
        assert defines(file, attribute or "app"), f"-A {app}: {file.relative_to(ROOT)} defines no app"
    valued = {opt for param in celery.params if isinstance(param, click.Option) and not param.is_flag
              for opt in param.opts}
    words = iter(enumerate(args))
    rest = []
    for at, word in words:
        if word in valued:
            next(words, None)
        elif not word.startswith("-"):
            rest = list(args[at:])
            break
    assert rest, "no celery subcommand"
    name, sub_args = rest[0], list(rest[1:])
    command = celery.commands.get(name)
    assert command is not None, f"celery has no subcommand {name!r}"
    if name == "flower":
        from flower.options import options

        for word in sub_args:
            option = word.removeprefix("--").split("=")[0]
            assert word.startswith("--") and option in options, f"flower has no option {word!r}"
        return "celery flower's options"
    try:
        context = command.make_context(name, list(sub_args), obj=click_app())  # click consumes it
    except click.ClickException as exc:
        raise AssertionError(f"celery {name}'s parser refuses it: {exc.format_message()}") from None
    if name == "worker":
        raw = dict(pairwise(sub_args))
        hostname = next((raw[o] for o in ("-n", "--hostname") if o in raw), None) or next(
            (w.split("=", 1)[1] for w in sub_args if w.startswith("--hostname=")), None)
        assert hostname, "a worker needs a node name of its own: --hostname NAME@%h"
        assert "@" in hostname and "%h" in hostname, f"--hostname {hostname}: give NAME@%h"
        queues = tuple(sorted(q for qs in context.params.get("queues") or () for q in qs.split(",")))
        assert queues, "a worker needs -Q with its queues"
        workers.append((block, hostname, queues))
    return f"celery {name}'s parser"


def check_script(args: list[str]) -> str:
    """``python path/to/script.py --options``: the script exists and declares each option."""
    script = ROOT / args[0]
    assert script.is_file(), f"{args[0]} does not exist"
    declared = {value.value for node in ast.walk(ast.parse(script.read_text()))
                if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument"
                for value in node.args if isinstance(value, ast.Constant)}
    for word in args[1:]:
        if word.startswith("-"):
            assert word.split("=")[0] in declared, f"{args[0]} has no option {word}"
    return f"{args[0]}'s options"


def check_pip(args: list[str]) -> str:
    assert args and args[0] == "install", "pip: only `pip install` is documented"
    for word in args[1:]:
        if word.startswith("-"):
            assert word in ("-e", "--editable", "-U", "--upgrade"), f"pip option {word}"
            continue
        match = re.fullmatch(r"(\.|celery-animate)(?:\[([\w,-]+)\])?", word)
        assert match, f"pip install {word}: install this package (. or celery-animate[extras])"
        unknown = set((match.group(2) or "").split(",")) - {""} - extras()
        assert not unknown, f"pip install {word}: no extra {sorted(unknown)} in pyproject.toml"
    return "pyproject.toml's extras"


def check_pytest(args: list[str]) -> str:
    words = iter(args)
    for word in words:
        if word == "-m":
            expression = next(words, "")
            markers = set(re.findall(r"\w+", expression)) - {"not", "and", "or"}
            assert markers <= pytest_markers(), f"pytest -m {expression!r}: unknown marker"
        else:
            assert word in ("-q", "-x", "-v") or (ROOT / word.split("::")[0]).exists(), f"pytest {word}"
    return "the test suite (CI runs the README's test command)"


@cache
def compose_services(*files: str) -> frozenset[str]:
    import yaml

    return frozenset(name for file in files for name in (yaml.safe_load((ROOT / file).read_text())
                                                          .get("services") or {}))


def check_compose(args: list[str]) -> str:
    """The Compose files exist, the subcommand is one of Compose's, scaled services exist;
    ``tests/test_ecosystem.py`` validates the files themselves with a real Compose."""
    files, words = [], iter(args)
    for word in words:
        if word != "-f":
            break
        files.append(next(words))
    else:
        raise AssertionError("docker compose without a subcommand")
    files = files or ["docker-compose.yml"]
    for file in files:
        assert (ROOT / file).is_file(), f"{file} does not exist"
    assert word in ("up", "down", "ps", "logs", "build", "config", "stop", "start", "restart"), word
    for option in words:
        if option == "--scale":
            service = next(words).split("=")[0]
            assert service in compose_services(*files), f"--scale {service}: no such service"
        else:
            assert option in ("--build", "-d", "--detach", "--remove-orphans", "-v", "--volumes"), option
    return "the Compose files"


def check_gunicorn(args: list[str]) -> str:
    from gunicorn.config import Config

    err = io.StringIO()
    try:
        with redirect_stderr(err):
            parsed = Config().parser().parse_args(args)
    except SystemExit:
        raise AssertionError(f"gunicorn's parser refuses it: {err.getvalue().strip()}") from None
    assert len(parsed.args) == 1, "gunicorn needs one app, module:name"
    check_import_path(parsed.args[0])
    return "gunicorn's parser"


@cache
def ci_lines() -> tuple[str, ...]:
    return tuple(line.strip() for line in CI_SCRIPT.read_text().splitlines())


def check(command: Command, workers: list[Worker]) -> str:
    """How ``command`` is exercised, or AssertionError saying why it is not."""
    words = shlex.split(command.text, comments=True)
    while words and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", words[0]):
        check_variable(words.pop(0).split("=")[0])
    assert words, "nothing but variables"
    program, args = words[0], words[1:]
    if program == "export":
        for word in args:
            check_variable(word.split("=")[0])
        return "known variables"
    if program == "python" and args[:2] == ["-m", "pip"]:
        return check_pip(args[2:])
    if program == "pip":
        return check_pip(args)
    if program == "python" and args[:2] == ["-m", "pytest"]:
        return check_pytest(args[2:])
    if program == "python" and args[:2] == ["-m", "celery"]:
        return check_celery(args[2:], command.block, workers)
    if program == "python" and args and args[0].endswith(".py"):
        return check_script(args)
    if program == "celery-animate":
        return check_celery_animate(args)
    if program == "celery":
        return check_celery(args, command.block, workers)
    if program == "docker" and args[:1] == ["compose"]:
        return check_compose(args[1:])
    if program == "gunicorn":
        return check_gunicorn(args)
    if program == "apt-get" and args[:1] == ["install"]:
        installed = next(line for line in ci_lines() if "apt-get install" in line).split()
        unknown = sorted(set(args[1:]) - set(installed))
        assert not unknown, f"{unknown}: not what CI installs"
        return ".ci/run's apt-get"
    if command.text in ci_lines():
        return ".ci/run"
    if words == ["mkdocs", "build", "--strict"]:
        return "test_the_site_builds_strictly"
    raise AssertionError("no test runs or checks this command: add a check for it in tests/test_docs.py")


def test_every_documented_command_is_run_or_checked_by_a_test():
    commands = documented_commands()
    assert len(commands) > 30, "the documentation lost its commands (or this test lost them)"
    workers: list[Worker] = []
    failures = []
    for command in commands:
        try:
            check(command, workers)
        except AssertionError as exc:
            failures.append(f"{command}\n    {exc}")
    assert not failures, "documented commands that no test covers:\n" + "\n".join(failures)
    # Workers started together need a node name each; a node name means one role everywhere.
    roles: dict[str, tuple[str, ...]] = {}
    for block, hostname, queues in workers:
        in_block = [name for other, name, _ in workers if other == block]
        assert in_block.count(hostname) == 1, f"{block.file}:{block.line}: two workers named {hostname}"
        assert roles.setdefault(hostname, queues) == queues, (
            f"{block.file}:{block.line}: {hostname} consumes {queues} here, {roles[hostname]} elsewhere")
    assert {"render", "gpu"} <= {q for _, _, queues in workers for q in queues}


def bad(text: str) -> str:
    with pytest.raises(AssertionError) as info:
        check(Command(Block("x.md", 1, "bash", (text,)), text), [])
    return str(info.value)


def test_the_command_checks_fail_on_a_command_that_would_fail():
    assert "refuses" in bad("celery-animate render examples/wave.py:WaveAnimation")  # no -o
    assert "refuses" in bad("celery-animate rendre x -o y.mp4")
    assert "defines no Missing" in bad("celery-animate render examples/wave.py:Missing -o w.mp4")
    assert "--hostname" in bad("celery -A celery_animate worker -Q render")
    assert "-Q" in bad("celery -A celery_animate worker --hostname r@%h")
    assert "refuses" in bad("celery -A celery_animate worker -Q render --hostname r@%h --bogus")
    assert "no extra" in bad('pip install "celery-animate[nope]"')
    assert "no option" in bad("python bench/run.py --fast")
    assert "no such service" in bad("docker compose up --scale renders=2")
    assert "read by nothing" in bad("CELERY_ANIMATE_NOPE=1 celery-animate doctor")
    assert "no test runs or checks" in bad("make install")
    workers: list[Worker] = []
    block = Block("x.md", 1, "bash", ())
    check(Command(block, "celery -A celery_animate worker -Q gpu -c 2 --hostname gpu@%h"), workers)
    assert workers == [(block, "gpu@%h", ("gpu",))]


def readme_command(marker: str) -> str:
    """What .ci/run reads under ``<!-- marker -->``, by .ci/run's own function."""
    script = CI_SCRIPT.read_text()
    function = re.search(r"^readme_command\(\) \{.*?^\}", script, re.S | re.M)
    assert function, ".ci/run has no readme_command function"
    proc = subprocess.run(["bash", "-c", f"{function.group(0)}\nreadme_command {marker}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_the_readme_gives_ci_its_three_commands_under_their_markers():
    lines = README.read_text().splitlines()
    for marker in ("install-command", "render-command", "test-command"):
        at = lines.index(f"<!-- {marker} -->")
        assert lines[at + 1] == "```bash", f"<!-- {marker} --> must sit directly above a ```bash block"
        assert lines[at + 3] == "```", f"the {marker} block must hold one line"
        assert readme_command(marker) == lines[at + 2]
    assert readme_command("install-command") == 'python -m pip install -e ".[dev]"'
    assert readme_command("test-command") == "python -m pytest -q"
    assert readme_command("render-command").startswith("celery-animate render ")


# Environment blocks ---------------------------------------------------------------------------

def test_every_variable_in_a_documented_environment_is_read_by_something():
    settings = [(block, line) for path in documentation_files() for block in fenced_blocks(path)
                if block.language in ENV_LANGUAGES for line in block.lines
                if line.strip() and not line.lstrip().startswith("#")]
    assert settings, "no documented environment"
    for block, line in settings:
        name, equals, _ = line.partition("=")
        assert equals, f"{block.file}:{block.line}: {line!r} is not NAME=value"
        check_variable(name.strip())


# The configuration page -----------------------------------------------------------------------

def configuration_rows() -> dict[str, list[str]]:
    """The Settings table of the configuration page: variable -> its cells."""
    rows = {}
    for line in CONFIG_PAGE.read_text().splitlines():
        match = re.match(r"^\| `([A-Z0-9_]+)` \|", line)
        if match:
            rows[match.group(1)] = [cell.strip() for cell in line.strip().strip("|").split("|")]
    return rows


def test_the_configuration_page_lists_exactly_the_variables_config_reads():
    read = set(settings_variables())
    assert {"CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "CELERY_ANIMATE_OUTPUT_ROOT"} <= read
    rows = configuration_rows()
    missing = sorted(read - set(rows))
    assert not missing, f"read by config.py, missing on the configuration page: {missing}"
    on_page = set(re.findall(r"\bCELERY_ANIMATE_[A-Z0-9_]+", CONFIG_PAGE.read_text())) | set(rows)
    extra = on_page - read
    assert not extra, f"on the configuration page, but config.py does not read them: {sorted(extra)}"
    text = CONFIG_PAGE.read_text()
    for name in OBJECT_STORE_VARIABLES:
        assert f"`{name}`" in text, f"{name} (an object store's variable) is not on the configuration page"


def test_every_setting_has_a_variable_and_its_default_on_the_configuration_page():
    fields = set(Settings.__dataclass_fields__)
    by_variable = settings_variables()
    # Not from a variable of their own: the object store's standard variables, and a flag the
    # embedded cluster sets.
    assert fields - set(by_variable.values()) == {"object_store_env", "embedded"}
    defaults = Settings.from_env({})
    special = {"broker_url": "unset", "result_backend": "the broker",
               "segment_frames": f"`{CLUSTER_SEGMENT_FRAMES}` (embedded: `{EMBEDDED_SEGMENT_FRAMES}`)"}
    for variable, (_, default, read_by, meaning) in configuration_rows().items():
        field = by_variable[variable]
        value = getattr(defaults, field)
        if field in special:
            expected = special[field]
            assert default.startswith(expected), f"{variable}: default {default!r}, not {expected!r}"
        elif isinstance(value, bool):
            assert default == f"`{str(value).lower()}`", f"{variable}: default {default!r}, not {value}"
        elif isinstance(value, (int, str)) and value not in ("",):
            assert default.startswith(f"`{value}`"), f"{variable}: default {default!r}, not {value!r}"
        else:
            assert value in (None, (), ""), f"{variable}: {value!r}"
            assert default.startswith(("unset", "empty")), f"{variable}: default {default!r}, not unset"
        assert read_by and meaning, f"{variable}: say who reads it and what it means"


# Errors and parameters ------------------------------------------------------------------------

def public_errors() -> list[str]:
    """The error classes users can meet: those above errors.py's control-flow section."""
    source = Path(errors.__file__).read_text()
    public = source.split("# -- control flow")[0]
    names = re.findall(r"^class (\w+)\(", public, re.M)
    assert "RenderFailed" in names and "JobEnded" not in names
    return names


def test_the_troubleshooting_page_has_a_section_for_every_error():
    page = (DOCS / "troubleshooting.md").read_text()
    headings = set(re.findall(r"^#+ `(\w+)`$", page, re.M))
    missing = [name for name in public_errors() if name not in headings]
    assert not missing, f"docs/troubleshooting.md has no section for {missing}"
    unknown = headings - set(public_errors())
    assert not unknown, f"docs/troubleshooting.md has sections for errors that do not exist: {unknown}"


def test_the_porting_page_names_every_parameter_of_make_video_and_the_docs_those_of_submit():
    porting = (DOCS / "porting.md").read_text()
    for name in list(inspect.signature(Animator.make_video).parameters)[1:]:
        assert f"`{name}`" in porting, f"docs/porting.md does not name make_video's `{name}`"
    guide = "".join(path.read_text() for path in DOCS.glob("*.md"))
    for name in list(inspect.signature(Animator.submit).parameters)[1:]:
        assert f"`{name}`" in guide, f"no page names submit's `{name}`"


# The README, a front page ---------------------------------------------------------------------

def test_the_readme_is_a_front_page_whose_links_resolve():
    text = README.read_text()
    assert len(text.splitlines()) <= 200, "the README is a front page: move details into docs/"
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [target for target in targets if "://" not in target]
    assert any(target.startswith("docs/") for target in local)
    for target in local:
        assert (ROOT / target).exists(), f"README.md links to {target}, which does not exist"


def test_the_readme_performance_table_is_the_latest_benchmark():
    def rows(markdown: str) -> dict[str, list[str]]:
        found = {}
        for line in markdown.splitlines():
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            if line.startswith("| ") and len(cells) > 6 and re.fullmatch(r"\d+", cells[1]):
                found.setdefault(cells[0], cells)
        return found

    readme = rows(README.read_text())
    latest = rows((ROOT / "bench" / "results" / "results.md").read_text())
    assert readme, "the README has no performance table"
    for workload, cells in readme.items():
        assert workload in latest, f"{workload}: not in bench/results/results.md"
        assert cells[:8] == latest[workload][:8], (
            f"README's row for {workload} is not bench/results/results.md's: {cells[:8]} != "
            f"{latest[workload][:8]}")
