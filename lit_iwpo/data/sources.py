"""Read split sources: local JSONL / JSON / Parquet files, or Hugging Face datasets by name.

Source strings:
- ``path/to/file.jsonl`` | ``.json`` | ``.parquet``: JSONL has one JSON object per line (row N is line N);
  JSON holds one list of objects (or ``{"data": [...]}``). Text files must be UTF-8 (a UTF-8 byte-order
  mark is fine).
- ``hf:NAME[:SPLIT][@CONFIG]``, e.g. ``hf:PKU-Alignment/PKU-SafeRLHF:train@default``; NAME may also be a
  local dataset folder (``hf:/abs/path/to/folder``, holding e.g. ``train.jsonl`` and ``test.jsonl``), which
  is how the hub path is exercised offline. A folder given as a plain path is an error that says so.
- ``scenario:NAME:SPLIT[?key=value&...]``: an embedded deployment-shift scenario built in memory, e.g.
  ``scenario:helpful_harmless:train?seed=1&severity=0.6`` (keys: seed, n_train, n_val, n_test, severity,
  shift, holdout; see ``lit_iwpo scenario list``).

Columns: rows need ``prompt``, ``chosen`` and ``rejected`` (see :mod:`lit_iwpo.data.records`).
:func:`rename_columns` applies ``data.column_map`` (``{prompt: question, chosen: good, rejected: bad}``);
a source that lacks a column altogether gets one message with the columns found and a suggested map.
Without a ``prompt`` column, ``chosen``/``rejected`` holding whole conversations are read in TRL's
implicit-prompt format (their common beginning is the prompt; :func:`lit_iwpo.data.records.extract_prompt`).
Every problem is a :class:`DataError` naming the source, row and field and saying what to do.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from lit_iwpo.data.records import (
    TEXT_FIELDS,
    DataError,
    Source,
    columns_found,
    format_column_map,
    format_columns,
    json_kind,
    suggest_column_map,
)

FILE_SUFFIXES = (".jsonl", ".json", ".parquet")
ACCEPTED_FORMS = ("a .jsonl, .json or .parquet file; hf:NAME[:SPLIT][@CONFIG] (a Hugging Face dataset, or a local "
                  "dataset folder as hf:/abs/path/to/folder); or scenario:NAME:SPLIT (an embedded scenario, see "
                  "`lit_iwpo scenario list`)")
UTF8_BOM = b"\xef\xbb\xbf"
UTF16_32_BOMS = {b"\xff\xfe\x00\x00": "UTF-32", b"\x00\x00\xfe\xff": "UTF-32", b"\xff\xfe": "UTF-16",
                 b"\xfe\xff": "UTF-16"}


def parse_hf_spec(spec: str) -> tuple[str, str, str | None]:
    """``hf:NAME[:SPLIT][@CONFIG]`` -> (name, split, config); split defaults to ``train``."""
    body = spec[3:]
    config = None
    if "@" in body:
        body, config = body.rsplit("@", 1)
    name, _, split = body.partition(":")
    if not name:
        raise DataError(f"{spec}: expected hf:NAME[:SPLIT][@CONFIG], e.g. hf:OWNER/DATASET:train or "
                        "hf:/abs/path/to/folder:train")
    return name, split or "train", config


def _first_line(err: BaseException, limit: int = 240) -> str:
    text = str(err).strip().splitlines()
    line = text[0] if text else type(err).__name__
    return line if len(line) <= limit else line[:limit] + "..."


def _utf8_copy(path: Path) -> Path:
    return path.with_name(f"{path.stem}.utf8{path.suffix}")


def _not_utf8(path: Path, where: str, detail: str) -> DataError:
    return DataError(f"{where}: not UTF-8 text ({detail}); the file must be UTF-8: re-save it as UTF-8, e.g. "
                     f"iconv -f latin1 -t utf-8 {path} > {_utf8_copy(path)}")


def _read_bytes(path: Path) -> bytes:
    """The file's bytes without a UTF-8 byte-order mark; UTF-16/32 files are an error."""
    data = path.read_bytes()
    if data.startswith(UTF8_BOM):
        return data[len(UTF8_BOM):]
    for bom, encoding in UTF16_32_BOMS.items():
        if data.startswith(bom):
            raise DataError(f"{path}: the file is {encoding} text; it must be UTF-8: re-save it as UTF-8, e.g. "
                            f"iconv -f {encoding} -t utf-8 {path} > {_utf8_copy(path)}")
    return data


def _read_jsonl(path: Path) -> Source:
    data = _read_bytes(path)
    rows, numbers = [], []
    for lineno, raw in enumerate(data.splitlines(), 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            raise _not_utf8(path, f"{path}, row {lineno}",
                            f"line {lineno}, byte 0x{raw[err.start]:02x} at column {err.start + 1}") from None
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            if not rows and _is_json_document(data):
                raise DataError(f"{path}: holds one JSON document spread over several lines, not one JSON object "
                                f"per line; rename it to {path.stem}.json") from None
            raise DataError(f"{path}, row {lineno}: not valid JSON ({err.msg} at column {err.colno}); each line of "
                            "a .jsonl file must be one complete JSON object") from None
        numbers.append(lineno)
    return Source(str(path), rows, numbers)


def _is_json_document(data: bytes) -> bool:
    try:
        json.loads(data.decode("utf-8"))
    except ValueError:  # JSONDecodeError and UnicodeDecodeError
        return False
    return True


def _is_json_lines(text: str) -> bool:
    """Whether ``text`` reads as JSON Lines: every non-empty line one JSON value, at least two of them."""
    values = 0
    for line in text.splitlines():
        if line.strip():
            try:
                json.loads(line)
            except json.JSONDecodeError:
                return False
            values += 1
    return values > 1


def _read_json(path: Path) -> Source:
    data = _read_bytes(path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line_start = data.rfind(b"\n", 0, err.start) + 1
        lineno = data.count(b"\n", 0, err.start) + 1
        raise _not_utf8(path, f"{path}, line {lineno}",
                        f"byte 0x{data[err.start]:02x} at column {err.start - line_start + 1}") from None
    if not text.strip():
        return Source(str(path), [])  # reported as "has no rows" by validate_source
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        if err.msg == "Extra data" and _is_json_lines(text):
            raise DataError(f"{path}: holds one JSON object per line (JSON Lines), not one JSON document; rename "
                            f"it to {path.stem}.jsonl") from None
        raise DataError(f"{path}, line {err.lineno}, column {err.colno}: not valid JSON ({err.msg}); a .json file "
                        "must hold one JSON list of records") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise DataError(_not_a_list(path, data))
    return Source(str(path), data)


def _not_a_list(path: Path, data: Any) -> str:
    expected = ('expected a list of records, [{"prompt": ..., "chosen": ..., "rejected": ...}, ...], or '
                '{"data": [...]}')
    if isinstance(data, dict):
        if any(f in data for f in TEXT_FIELDS):
            return f"{path}: holds a single JSON object, not a list of records; wrap it in [...] ({expected})"
        lists = [k for k, v in data.items() if isinstance(v, list)]
        keys = ", ".join(repr(k) for k in list(data)[:10]) or "none"
        hint = f"; the records seem to be under {lists[0]!r}: name that key 'data'" if lists else ""
        return f"{path}: the top level is a JSON object with keys {keys}; {expected}{hint}"
    return f"{path}: the top level is {json_kind(data)}; {expected}"


def _read_parquet(path: Path) -> Source:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as err:
        raise DataError(f"{path}: not a readable Parquet file ({_first_line(err)}); re-export it (e.g. "
                        "pandas.DataFrame.to_parquet) or give the data as .jsonl") from None
    return Source(str(path), table.to_pylist())


def _read_hf(spec: str) -> Source:
    name, split, config = parse_hf_spec(spec)
    failed = f"{spec}: could not load Hugging Face dataset {name!r} split {split!r}"
    local = Path(name).expanduser()
    is_path = name.startswith(("/", ".", "~")) or local.exists()
    if is_path and not local.exists():
        raise DataError(f"{failed}: folder {local} does not exist; hf:PATH reads a local dataset folder "
                        "(hf:/abs/path/to/folder[:SPLIT]), hf:OWNER/NAME a Hugging Face hub dataset")
    if is_path and local.is_file():
        raise DataError(f"{failed}: {local} is a file, and hf:PATH reads a dataset folder; give the file itself as "
                        f"the source (e.g. data.train: {local})")
    import datasets

    try:
        ds = datasets.load_dataset(str(local) if is_path else name, config, split=split)
    except Exception as err:  # the hub raises many types; the user needs the spec and the cause
        cause = _first_line(err)
        if "Unknown split" in str(err) or "Bad split" in str(err):
            raise DataError(f"{failed}: no such split ({cause}); name an existing one as hf:{name}:SPLIT") from None
        if is_path:
            raise DataError(f"{failed}: folder {local} holds no loadable data ({cause}); put the split's data files "
                            "in it (e.g. train.jsonl, test.jsonl; .json, .parquet and .csv also work), or give one "
                            "file directly as the source") from None
        raise DataError(f"{failed} ({cause}); check the name, split and @CONFIG, and that the dataset is in the "
                        "local cache or the hub is reachable") from None
    return Source(spec, ds.to_list())


SCENARIO_SPLITS = ("train", "val", "test")
SCENARIO_KEYS = {"seed": int, "n_train": int, "n_val": int, "n_test": int, "severity": float, "shift": str,
                 "holdout": str}


def parse_scenario_spec(spec: str) -> tuple[str, str, dict[str, Any]]:
    """``scenario:NAME:SPLIT[?k=v&...]`` -> (name, split, build_scenario kwargs)."""
    body, _, query = spec[len("scenario:"):].partition("?")
    name, _, split = body.partition(":")
    if not name or split not in SCENARIO_SPLITS:
        raise DataError(f"{spec}: expected scenario:NAME:SPLIT with SPLIT one of {SCENARIO_SPLITS}")
    kwargs: dict[str, Any] = {}
    for key, value in parse_qsl(query, strict_parsing=bool(query)):
        if key not in SCENARIO_KEYS:
            raise DataError(f"{spec}: unknown scenario option {key!r}; use {', '.join(SCENARIO_KEYS)}")
        try:
            kwargs[key] = SCENARIO_KEYS[key](value)
        except ValueError:
            raise DataError(f"{spec}: option {key}={value!r} is not a {SCENARIO_KEYS[key].__name__}") from None
    return name, split, kwargs


@lru_cache(maxsize=8)
def _scenario(name: str, options: tuple) -> Any:
    from lit_iwpo.data.scenarios import build_scenario

    return build_scenario(name, **dict(options))


def _read_scenario(spec: str) -> Source:
    name, split, kwargs = parse_scenario_spec(spec)
    try:
        splits = _scenario(name, tuple(sorted(kwargs.items())))
    except (KeyError, ValueError) as err:
        raise DataError(f"{spec}: {err.args[0] if err.args else err}") from None
    return Source(spec, [dict(r) for r in getattr(splits, split)])


def read_source(spec: str | Path) -> Source:
    """Read all rows of one source (see the module docstring for the accepted forms)."""
    spec = str(spec)
    if spec.startswith("hf:"):
        return _read_hf(spec)
    if spec.startswith("scenario:"):
        return _read_scenario(spec)
    path = Path(spec).expanduser()
    if path.is_dir():
        raise DataError(f"{spec}: is a folder; read a dataset folder with hf:{path.resolve()} (hf:NAME also accepts "
                        "local folders), or give one of its .jsonl/.json/.parquet files")
    suffix = path.suffix.lower()
    if suffix not in FILE_SUFFIXES:
        kind = f" type {suffix!r}" if suffix else ""
        hint = (f"; convert it to .jsonl, or put it in a folder read as hf:/abs/path/to/folder"
                if suffix in (".csv", ".tsv") else "")
        raise DataError(f"{spec}: unknown source{kind}; accepted: {ACCEPTED_FORMS}{hint}")
    if not path.is_file():
        raise DataError(f"{spec}: file not found (looked for {path.resolve()}); check the path (relative paths "
                        "start at the current directory)")
    return {".jsonl": _read_jsonl, ".json": _read_json, ".parquet": _read_parquet}[suffix](path)


def check_column_map(column_map: Any) -> dict[str, str]:
    """``data.column_map`` must map prompt/chosen/rejected onto column names; raise a DataError naming it."""
    if not isinstance(column_map, dict):
        raise DataError(f"data.column_map must map prompt/chosen/rejected to your column names, e.g. "
                        f"{{prompt: question}}; got {column_map!r:.80}")
    bad = [t for t in column_map if t not in TEXT_FIELDS]
    if bad:
        which = ", ".join(repr(t) for t in bad)
        if all(column_map[t] in TEXT_FIELDS for t in bad):  # written the other way round
            fixed = {t: c for t, c in column_map.items() if t in TEXT_FIELDS}
            fixed.update({column_map[t]: t for t in bad})
            advice = f"did you mean --data.column_map '{format_column_map(fixed)}'?"
        else:
            advice = "e.g. --data.column_map '{prompt: question, chosen: good, rejected: bad}'"
        raise DataError(f"data.column_map: {which} {'is' if len(bad) == 1 else 'are'} not prompt, chosen or "
                        f"rejected; the map goes {{prompt|chosen|rejected: YOUR_COLUMN}}, {advice}")
    for target, column in column_map.items():
        if not isinstance(column, str) or not column:
            raise DataError(f"data.column_map: the column for {target!r} must be a column name, got {column!r:.60}")
    return column_map


def rename_columns(src: Source, column_map: dict[str, str] | None) -> Source:
    """Map dataset columns onto prompt/chosen/rejected (``{"prompt": "question", ...}``).

    A mapped column that no row has (while the target is absent too) is an error naming the source, the
    columns found and, when one looks like a synonym, the corrected map. Rows that are not objects pass
    through unchanged (validation reports them).
    """
    if not column_map:
        return src
    check_column_map(column_map)
    columns = columns_found(src.rows)
    unknown = {t: c for t, c in column_map.items() if c not in columns and t not in columns}
    if unknown and columns:
        which = ", ".join(f"'{c}' (for {t!r})" for t, c in unknown.items())
        mapping, guessed = suggest_column_map(list(unknown), columns,
                                              {t: c for t, c in column_map.items() if t not in unknown})
        advice = (f"did you mean --data.column_map '{format_column_map(mapping)}'?" if guessed else
                  "name columns that exist in the source")
        raise DataError(f"{src.name}: data.column_map names column {which}, but no row has it; columns found: "
                        f"{format_columns(columns)}; {advice}")
    sources = set(column_map.values())
    rows: list[Any] = []
    for row in src.rows:
        if isinstance(row, dict):
            moved = {t: row[c] for t, c in column_map.items() if c in row}  # all at once: swaps work
            row = {k: v for k, v in row.items() if k not in sources}
            row.update(moved)
        rows.append(row)
    return Source(src.name, rows, src.row_numbers)
