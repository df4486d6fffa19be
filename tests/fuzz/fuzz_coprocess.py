"""Coverage-guided fuzzing of lua2pipe's question handling (``make fuzz-long``), with atheris.

Each input is split into lines; every line is answered by ``Coprocess.answer`` (the whole
in-process path: UTF-8 check, the Lua dispatcher's parser, the hook, rendering, CMD) and must
come back as one framed answer (tests/coprocess_client.py ``check_framed``); a canary question
after each line must get exactly its own answer. The same input is also fed to ``LineReader``
in random pieces. Any violation raises, and atheris saves the input.

    .venv/bin/python tests/fuzz/fuzz_coprocess.py -max_total_time=300 [corpus_dir]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import atheris

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

with atheris.instrument_imports():
    from coprocess_client import FUZZ_SCRIPT, answer_kind, check_framed, good_question

    import lua2pipe

SCRIPT = lua2pipe.Script(str(FUZZ_SCRIPT), log=lua2pipe.Log(level=-1))
SCRIPT.set_abi(5)
_read, _write = os.pipe()
COPROCESS = lua2pipe.Coprocess(SCRIPT, _read, _write, resume_abi=5, log=lua2pipe.Log(level=-1))
COUNT = 0


def one_input(data: bytes) -> None:
    global COUNT
    for line in data.split(b"\n"):
        text = COPROCESS.answer(line)
        assert text.endswith(b"\n"), (line, text)
        check_framed(text[:-1].split(b"\n"), answer_kind(line))
        COUNT += 1
        question, expected = good_question(COUNT)
        assert COPROCESS.answer(question)[:-1].split(b"\n") == expected, line


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
