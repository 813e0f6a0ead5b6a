"""The command-line tests start `ykien` warm (tests/ykien_process.py: a child forked from a
server that imported the libraries, never ykien's own code). A warm start must answer as
`python -m bot` started cold does: same output, same errors, same exit code."""

from __future__ import annotations

import subprocess

from tests import ykien_process
from tests.conftest import EXAMPLE_DRAFT, cli_environment

# Each command runs warm, then cold, on the same database; {who} keeps their residents apart.
COMMANDS = [
    (["nonsense"], None),  # refused by argparse: exit 2
    (["draft", "create", "--file", "missing.toml"], None),
    (["draft", "create", "--file", str(EXAMPLE_DRAFT)], None),
    (["console", "--user", "{who}"], "/start\n1\ncam tu\n1\n/drafts\n"),
    (["draft", "list"], None),
]


def test_a_warm_start_answers_as_a_cold_one(database_url, tmp_path):
    env = cli_environment(database_url)
    for command, stdin in COMMANDS:
        answers = []
        for who in ("warm", "cold"):
            args = [arg.format(who=who) for arg in command]
            if who == "warm":
                done = ykien_process.run(args, input=stdin, text=True, env=env, cwd=tmp_path,
                                         timeout=120)
            else:
                done = subprocess.run(ykien_process.command(args), input=stdin, text=True,
                                      capture_output=True, env=env, cwd=tmp_path, timeout=120)
            answers.append((done.returncode, done.stdout, done.stderr))
        if command[:2] == ["draft", "create"]:  # the second one is draft no. 2
            returncode, stdout, stderr = answers[1]
            stdout = stdout.replace("no. 2", "no. 1").replace("broadcast 2", "broadcast 1")
            answers[1] = (returncode, stdout, stderr)
        assert answers[0] == answers[1], command
