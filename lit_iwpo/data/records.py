"""Preference records (TRL convention) and their validation.

A record is a dict with ``prompt``, ``chosen`` and ``rejected``, each either text or a list of chat
messages (``{"role": ..., "content": ...}``), plus optional metadata columns kept alongside
(``id``, ``group``, ``relevant``, ...). ``relevant`` and ``group`` are ground truth for analysis and
are never read by training code.

Implicit prompt (TRL's "preference with implicit prompt" format): a source with no ``prompt`` column,
whose ``chosen`` and ``rejected`` each hold the whole conversation, prompt first. :func:`extract_prompt`
splits such a row as TRL's ``extract_prompt`` does: the longest common prefix of ``chosen`` and
``rejected`` becomes the prompt and the remainders the responses. For message lists the prefix is
counted in whole messages; for text in characters, and when the character just before the split is a
space the split moves back one character, so the space stays with the responses
(``"The sky is blue."`` / ``"The sky is green."`` -> ``"The sky is"``, ``" blue."``, ``" green."``).
A row whose ``chosen`` and ``rejected`` share no beginning, or where one is the beginning of the other,
is an error. This applies only when no row has ``prompt``, ``data.column_map`` maps nothing onto it and
no column looks like a prompt under another name (``question``, ``instruction``, ...; see
:data:`COLUMN_SYNONYMS`); such a column gets a ``data.column_map`` suggestion instead.

Every :class:`DataError` message stands alone (the command line prints it without a traceback): it
names the source, the row and the field (or the option) and says what to do.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from lit_iwpo.errors import UserError

TEXT_FIELDS = ("prompt", "chosen", "rejected")
MAX_REPORTED_ERRORS = 20  # per-row problems other checks collect before stopping (see weights/column.py)
MAX_SHOWN_PROBLEMS = 5  # problem lines shown in one message; the rest are counted
MAX_SHOWN_COLUMNS = 15

# column names that usually hold prompt/chosen/rejected, most likely first (compared case-insensitively)
COLUMN_SYNONYMS = {
    "prompt": ("question", "instruction", "query", "input", "prompt_text", "user_prompt"),
    "chosen": ("good", "preferred", "response_chosen", "chosen_response", "chosen_text", "better", "winner"),
    "rejected": ("bad", "dispreferred", "response_rejected", "rejected_response", "rejected_text", "worse",
                 "loser"),
}


class DataError(UserError):
    """Bad input data. The message names the source (file or dataset), the row and the field."""


class RowError(DataError):
    """A problem with one field of one row, from a per-row function; callers add the source and row."""

    def __init__(self, fld: str, problem: str, code: str = "") -> None:
        super().__init__(f"field '{fld}': {problem}")
        self.field = fld
        self.problem = problem
        self.code = code


@dataclass
class Source:
    """Rows read from one file or dataset, with the row numbers users will look up in it."""

    name: str  # file path or "hf:NAME:SPLIT"; appears in every error message
    rows: list[dict[str, Any]]
    row_numbers: list[int] = field(default_factory=list)  # 1-based; for JSONL the line number

    def __post_init__(self) -> None:
        if not self.row_numbers:
            self.row_numbers = list(range(1, len(self.rows) + 1))

    def where(self, i: int, fld: str | None = None) -> str:
        where = f"{self.name}, row {self.row_numbers[i]}"
        return f"{where}, field '{fld}'" if fld else where


# ------------------------------------------------------------------------------------------ messages
def json_kind(value: Any) -> str:
    """How a value reads in JSON terms, for messages ("a JSON list", "null", ...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {json.dumps(value)}"
    if isinstance(value, (int, float)):
        return f"the number {value!r}"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a JSON list"
    if isinstance(value, dict):
        return "a JSON object"
    return f"a {type(value).__name__}"


def problems_error(problems: list[str], split: str, name: str, note: str | None = None) -> DataError:
    """One DataError for many problems: a summary line, the first few problems, a count of the rest."""
    lines = problems[:MAX_SHOWN_PROBLEMS]
    if len(problems) > MAX_SHOWN_PROBLEMS:
        lines.append(f"... and {len(problems) - MAX_SHOWN_PROBLEMS} more")
    if note:
        lines.append(note)
    return DataError(f"{len(problems)} problem(s) in split '{split}' ({name}):\n  " + "\n  ".join(lines))


def columns_found(rows: list[Any]) -> list[str]:
    """Every column of the object rows, in order of first appearance."""
    seen: dict[str, None] = {}
    for row in rows:
        if isinstance(row, dict):
            seen.update(dict.fromkeys(row))
    return list(seen)


def format_columns(columns: list[str]) -> str:
    if not columns:
        return "none"
    shown = ", ".join(columns[:MAX_SHOWN_COLUMNS])
    return shown + (f", ... ({len(columns)} in all)" if len(columns) > MAX_SHOWN_COLUMNS else "")


def _yaml_name(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", name) else json.dumps(name)


def format_column_map(mapping: dict[str, str]) -> str:
    """``{prompt: question, chosen: good}`` as typed after ``--data.column_map`` (YAML flow mapping)."""
    return "{" + ", ".join(f"{_yaml_name(t)}: {_yaml_name(c)}" for t, c in mapping.items()) + "}"


def guess_column(target: str, columns: list[str], taken: set[str] = frozenset()) -> str | None:
    """The column that most likely holds ``target`` under another name (see COLUMN_SYNONYMS), if any."""
    by_lower = {c.lower(): c for c in columns if isinstance(c, str) and c not in taken}
    for synonym in COLUMN_SYNONYMS.get(target, ()):
        if synonym in by_lower:
            return by_lower[synonym]
    return None


def suggest_column_map(missing: list[str], columns: list[str],
                       column_map: dict[str, str] | None = None) -> tuple[dict[str, str], bool]:
    """A ``data.column_map`` covering ``missing``: the user's entries plus guesses (``COLUMN`` where none).

    Returns the mapping and whether at least one missing field got a real guess.
    """
    current = {t: c for t, c in (column_map or {}).items() if t in TEXT_FIELDS}
    taken = set(current.values()) | set(TEXT_FIELDS)
    guessed, any_guess = dict(current), False
    for target in missing:
        column = guess_column(target, columns, taken)
        if column is not None:
            taken.add(column)
            any_guess = True
        guessed[target] = column or "COLUMN"
    return {t: guessed[t] for t in TEXT_FIELDS if t in guessed}, any_guess


def missing_columns_message(name: str, missing: list[str], columns: list[str], fields: tuple[str, ...],
                            column_map: dict[str, str] | None = None, note: str = "") -> str:
    """The one message for required columns that no row of a source has."""
    quoted = [f"'{m}'" for m in missing]
    which = quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"
    noun, them = ("column", "it") if len(missing) == 1 else ("columns", "them")
    mapping, guessed = suggest_column_map(missing, columns, column_map)
    if guessed:
        advice = f"map yours with data.column_map, e.g. --data.column_map '{format_column_map(mapping)}'"
    else:
        advice = (f"rename your columns, or map them with data.column_map, e.g. --data.column_map "
                  f"'{format_column_map(mapping)}' with COLUMN the name of your column")
    found = format_columns(columns)
    return f"{name}: missing {noun} {which} (no row has {them}); columns found: {found}; {advice}{note}"


def check_columns(src: Source, fields: tuple[str, ...] = TEXT_FIELDS, column_map: dict[str, str] | None = None
                  ) -> None:
    """Raise one DataError when a required column is absent from every row (rather than one line per row)."""
    columns = columns_found(src.rows)
    if not columns and not any(isinstance(r, dict) for r in src.rows):
        return  # no object rows at all: the per-row messages say so
    missing = [f for f in fields if f not in columns]
    if missing:
        raise DataError(missing_columns_message(src.name, missing, columns, fields, column_map))


# ------------------------------------------------------------------------------------------ row checks
def _check_messages(value: list) -> str | None:
    if not value:
        return "is an empty message list; give text or a list of chat messages"
    for j, msg in enumerate(value):
        if not isinstance(msg, dict) or not isinstance(msg.get("role"), str) or "content" not in msg:
            if isinstance(msg, dict) and "from" in msg and "value" in msg:
                hint = " (ShareGPT-style 'from'/'value': rename them to 'role'/'content')"
            elif not isinstance(msg, dict):
                hint = " (each message is an object {\"role\": ..., \"content\": ...})"
            else:
                lacks = [k for k in ("role", "content") if k not in msg or (k == "role" and msg[k] is None)]
                hint = f" (no {' and no '.join(repr(k) for k in lacks)})" if lacks else " ('role' must be text)"
            return f"message {j} must be a dict with 'role' and 'content', got {msg!r:.80}{hint}"
        if not isinstance(msg["content"], str):
            return f"message {j} content must be text, got {json_kind(msg['content'])}"
        if not msg["content"].strip() and msg["role"] != "system":
            return f"message {j} has empty content"
    return None


def _field_problem(row: dict[str, Any], fld: str) -> str | None:
    """What is wrong with one text field, phrased to follow "FILE, row N, field 'F': "."""
    if fld not in row:
        return "missing (other rows have it); add it to this row or remove the row"
    value = row[fld]
    if value is None:
        return "is null; give text or a list of chat messages"
    if isinstance(value, str):
        return "is empty; give non-empty text or remove the row" if not value.strip() else None
    if isinstance(value, list):
        return _check_messages(value)
    hint = ""
    if isinstance(value, dict) and "role" in value and "content" in value:
        hint = " (one message: wrap it in a list, [{...}])"
    return f"must be text or a list of chat messages, got {type(value).__name__} {value!r:.60}{hint}"


def _row_problem(src: Source, i: int, row: Any, fields: tuple[str, ...]) -> str | None:
    """The problem of a row that is not a JSON object, or None."""
    if isinstance(row, dict):
        return None
    example = "{" + ", ".join(f'"{f}": ...' for f in fields) + "}"
    hint = ""
    if isinstance(row, list) and row and all(isinstance(r, dict) for r in row):
        hint = " (a whole list of records on one line? a .jsonl file holds one object per line)"
    return f"{src.where(i)}: is {json_kind(row)}, not an object; each row must be an object like {example}{hint}"


def as_relevance(value: Any) -> bool | None:
    """The ground-truth ``relevant`` flag as a bool (accepts bools, numpy bools and 0/1); None when unknown."""
    if isinstance(value, bool):
        return value
    if type(value).__module__ == "numpy" and type(value).__name__.startswith("bool"):  # from parquet/pandas
        return bool(value)
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    return None


def _canonical(value: Any) -> str:
    return value.strip() if isinstance(value, str) else json.dumps(value, sort_keys=True, ensure_ascii=False)


def content_id(row: dict[str, Any], fields: tuple[str, ...] = TEXT_FIELDS) -> str:
    """A stable id from the pair's content: the same pair gets the same id in every run and split."""
    payload = "\x1f".join(_canonical(row[f]) for f in fields)
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()[:16]


# ------------------------------------------------------------------------------------------ implicit prompt
def implicit_prompt_length(chosen: str | list, rejected: str | list) -> int:
    """Where TRL's ``extract_prompt`` splits an implicit-prompt pair: the length of the common prefix of
    ``chosen`` and ``rejected`` (characters of text, or whole messages), moved back by one when the text
    character just before the first difference is a space (the space stays with the responses)."""
    n, limit = 0, min(len(chosen), len(rejected))
    while n < limit and chosen[n] == rejected[n]:
        n += 1
    if n < limit and n > 0 and isinstance(chosen, str) and chosen[n - 1] == " ":
        n -= 1
    return n


def extract_prompt(row: dict[str, Any]) -> dict[str, Any]:
    """Split an implicit-prompt row (``chosen``/``rejected`` hold the whole conversation, no ``prompt``)
    into prompt + responses as TRL does (see the module docstring). Pure: returns a new row with
    ``prompt`` first and the other columns kept. Raises :class:`RowError` naming the field at fault.
    """
    for fld in ("chosen", "rejected"):
        if problem := _field_problem(row, fld):
            raise RowError(fld, problem)
    chosen, rejected = row["chosen"], row["rejected"]
    if isinstance(chosen, str) != isinstance(rejected, str):
        raise RowError("rejected", f"is {'text' if isinstance(rejected, str) else 'a message list'} but 'chosen' "
                                   f"is {'text' if isinstance(chosen, str) else 'a message list'}; give both as "
                                   "text or both as message lists")
    n = implicit_prompt_length(chosen, rejected)
    if n == min(len(chosen), len(rejected)):  # no difference: equal, or one is the beginning of the other
        if len(chosen) == len(rejected):
            raise RowError("rejected", "is identical to 'chosen' (the pair carries no preference)")
        short, long_ = ("chosen", "rejected") if len(chosen) < len(rejected) else ("rejected", "chosen")
        raise RowError(short, f"is the beginning of '{long_}' (nothing of it is left as a response after the "
                              "prompt they share); both must continue the shared prompt with a response of their own")
    prompt = chosen[:n]
    if not n or (isinstance(prompt, str) and not prompt.strip()):
        raise RowError("prompt", "missing, and 'chosen' and 'rejected' do not begin the same way, so no "
                                 "prompt can be taken from them", code="no_common_prefix")
    out = {"prompt": prompt, "chosen": chosen[n:], "rejected": rejected[n:]}
    out.update((k, v) for k, v in row.items() if k not in out)
    return out


def has_implicit_prompt(src: Source, column_map: dict[str, str] | None = None) -> bool:
    """Whether ``src`` is in the implicit-prompt format: rows with ``chosen`` and ``rejected``, no row with
    ``prompt``, nothing mapped onto ``prompt`` and no column that looks like a prompt (COLUMN_SYNONYMS)."""
    if column_map and "prompt" in column_map:
        return False
    columns = columns_found(src.rows)
    return ("prompt" not in columns and "chosen" in columns and "rejected" in columns
            and guess_column("prompt", columns) is None)


def extract_prompts(src: Source, split: str) -> Source:
    """:func:`extract_prompt` on every row of an implicit-prompt source; one DataError lists the problems."""
    rows, problems, no_prefix, objects = [], [], 0, 0
    for i, row in enumerate(src.rows):
        if (problem := _row_problem(src, i, row, ("chosen", "rejected"))) is not None:
            problems.append(problem)
            rows.append(row)
            continue
        objects += 1
        try:
            rows.append(extract_prompt(row))
        except RowError as err:
            problems.append(f"{src.where(i, err.field)}: {err.problem}")
            no_prefix += err.code == "no_common_prefix"
            rows.append(row)
    if problems and no_prefix == objects:  # no row shares a beginning: not the implicit format at all
        raise DataError(missing_columns_message(
            src.name, ["prompt"], columns_found(src.rows), TEXT_FIELDS,
            note=" (without a 'prompt' column the prompt is taken from the common beginning of 'chosen' and "
                 "'rejected', TRL's implicit-prompt format, but they share none in any row)"))
    if problems:
        raise problems_error(problems, split, src.name, note=(
            f"({src.name} has no 'prompt' column, so each row's prompt is taken from the common beginning of "
            "'chosen' and 'rejected', TRL's implicit-prompt format; if another column holds the prompt, map it "
            "with --data.column_map '{prompt: COLUMN}')"))
    return Source(src.name, rows, src.row_numbers)


# ------------------------------------------------------------------------------------------ validation
def validate_source(src: Source, split: str, fields: tuple[str, ...] = TEXT_FIELDS,
                    column_map: dict[str, str] | None = None) -> list[str]:
    """Check every row of ``src``; raise one :class:`DataError` listing the problems; return sample ids.

    A required column that no row has is reported once, with the columns found and a ``data.column_map``
    suggestion (``column_map``: the user's current map, merged into the suggestion). Ids come from an
    ``id`` column when present (must be unique), else from :func:`content_id` (exact duplicate pairs get a
    ``#k`` suffix so ids stay unique and stable). ``fields=("prompt",)`` checks prompt-only rows (what
    ``predict`` needs).
    """
    if not src.rows:
        raise DataError(f"{src.name}: split '{split}' has no rows; it needs at least one record with "
                        f"{', '.join(fields)}")
    check_columns(src, fields, column_map)
    problems: list[str] = []
    ids: list[str] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(src.rows):
        if (problem := _row_problem(src, i, row, fields)) is not None:
            problems.append(problem)
            ids.append("")
            continue
        row_problems = [f"{src.where(i, f)}: {p}" for f in fields if (p := _field_problem(row, f))]
        if not row_problems and "rejected" in fields and _canonical(row["chosen"]) == _canonical(row["rejected"]):
            row_problems.append(f"{src.where(i, 'rejected')}: is identical to 'chosen' (the pair carries no "
                                "preference); fix or remove the row")
        problems += row_problems
        if "id" in row and row["id"] is not None:
            sid = str(row["id"])
            if sid in seen:
                first = src.row_numbers[seen[sid]]
                problems.append(f"{src.where(i, 'id')}: duplicate {sid!r} (first at row {first}); ids must be unique")
        elif not row_problems:
            base = content_id(row, fields)
            sid, k = base, 1
            while sid in seen:
                sid, k = f"{base}#{k}", k + 1
        else:
            sid = ""
        seen.setdefault(sid, i)
        ids.append(sid)
    if problems:
        raise problems_error(problems, split, src.name)
    return ids
