"""Data: validation errors name file, row and field; truncation; templates; ids; sources; batches."""

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from conftest import make_rows, write_jsonl
from lit_iwpo.data import DataError, PairTokenizer, PreferenceDataModule, read_source, validate_source
from lit_iwpo.data.collate import collate_pairs, collate_prompts
from lit_iwpo.data.sampler import ResumableSampler
from lit_iwpo.models import byte_tokenizer


def _dm(tmp_path, train_rows, **kw):
    path = write_jsonl(tmp_path / "train.jsonl", train_rows)
    return PreferenceDataModule(train=str(path), tokenizer="tiny-llama", **kw), path


@pytest.mark.parametrize(
    "mutate, field, phrase",
    [
        (lambda r: r.pop("chosen"), "chosen", "missing"),
        (lambda r: r.update(prompt="   "), "prompt", "is empty"),
        (lambda r: r.update(rejected=None), "rejected", "is null"),
        (lambda r: r.update(chosen=42), "chosen", "must be text or a list of chat messages, got int"),
        (lambda r: r.update(rejected=r["chosen"]), "rejected", "is identical to 'chosen'"),
        (lambda r: r.update(prompt=[{"role": "user"}]), "prompt", "message 0 must be a dict with 'role' and 'content'"),
    ],
)
def test_bad_rows_name_file_row_field(tmp_path, mutate, field, phrase):
    rows = make_rows(5)
    mutate(rows[3])  # 4th line of the file
    dm, path = _dm(tmp_path, rows)
    with pytest.raises(DataError) as err:
        dm.setup("fit")
    msg = str(err.value)
    assert f"{path}, row 4, field '{field}': {phrase}" in msg


def test_invalid_json_line_and_missing_file(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(make_rows(1)[0]) + "\n{not json\n")
    with pytest.raises(DataError, match=r"bad.jsonl, row 2: not valid JSON"):
        read_source(path)
    with pytest.raises(DataError, match="file not found"):
        read_source(tmp_path / "nope.jsonl")
    with pytest.raises(DataError, match="unknown source"):
        read_source(tmp_path / "x.csv")


def test_empty_split_and_missing_train(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    dm = PreferenceDataModule(train=str(empty), tokenizer="tiny-llama")
    with pytest.raises(DataError, match=r"empty.jsonl: split 'train' has no rows"):
        dm.setup("fit")
    with pytest.raises(DataError, match="fit needs training data"):
        PreferenceDataModule(tokenizer="tiny-llama").setup("fit")


def test_prompt_too_long_is_reported(tmp_path):
    rows = make_rows(3)
    rows[1]["prompt"] = "x" * 200  # 200 byte tokens
    dm, path = _dm(tmp_path, rows, max_length=64, max_prompt_length=None)
    with pytest.raises(DataError, match=rf"{path}, row 2, field 'prompt': the prompt is 200 tokens"):
        dm.setup("fit")
    with pytest.raises(ValueError, match="max_prompt_length"):
        PairTokenizer(byte_tokenizer(), max_length=64, max_prompt_length=64)


def test_duplicate_explicit_ids(tmp_path):
    rows = make_rows(3)
    for r in rows:
        r["id"] = "same"
    dm, path = _dm(tmp_path, rows)
    with pytest.raises(DataError, match=r"row 2, field 'id': duplicate 'same' \(first at row 1\)"):
        dm.setup("fit")


def test_truncation_keeps_prompt_end_and_response_start():
    tok = byte_tokenizer()
    pt = PairTokenizer(tok, max_length=20, max_prompt_length=8, apply_chat_template=False)
    from lit_iwpo.data.records import Source

    src = Source("mem", [{"prompt": "ABCDEFGHIJKLMNOP", "chosen": "abcdefghijklmnopqrstuvwxyz", "rejected": "no"}])
    (pair,) = pt(src, "train")
    assert tok.decode(pair.prompt) == "IJKLMNOP"  # last 8 prompt tokens
    assert tok.decode(pair.chosen) == "abcdefghijkl"  # first 20 − 8 = 12 response tokens
    assert tok.decode(pair.rejected) == "no<|im_end|>"  # plain text: eos appended


def test_chat_template_rendering_and_messages():
    tok = byte_tokenizer()
    pt = PairTokenizer(tok, max_length=256, max_prompt_length=128, system_prompt="Be brief.")
    conv = {"prompt": [{"role": "user", "content": "Hi?"}], "chosen": [{"role": "assistant", "content": "Hello."}],
            "rejected": [{"role": "assistant", "content": "Go away."}]}
    p, c, r = pt.render(conv)
    assert p == "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi?<|im_end|>\n<|im_start|>assistant\n"
    assert c == "Hello.<|im_end|>" and r == "Go away.<|im_end|>"
    # plain text rows are not templated unless asked (apply_chat_template=None)
    plain = {"prompt": "Hi?", "chosen": "Hello.", "rejected": "Go away."}
    assert pt.render(plain) == ("Hi?", "Hello.", "Go away.")
    pt_always = PairTokenizer(tok, max_length=256, max_prompt_length=128, apply_chat_template=True)
    assert pt_always.render(plain)[1] == "Hello.<|im_end|>"


def test_loss_mask_covers_response_including_end_token_equal_to_pad():
    """pad id == eos id (as SmolLM2): the response's final <|im_end|> must stay in the loss mask."""
    tok = byte_tokenizer()
    assert tok.pad_token_id == tok.eos_token_id
    pt = PairTokenizer(tok, max_length=64, max_prompt_length=32, apply_chat_template=False)
    from lit_iwpo.data.records import Source

    pairs = pt(Source("mem", [{"prompt": "Q", "chosen": "yes", "rejected": "no way"}]), "train")
    batch = collate_pairs([(0, "id0", pairs[0])], pad_id=tok.pad_token_id, split="train", pad_to_multiple_of=8)
    assert batch.input_ids.shape == (2, 8)  # longest row "Q"+"no way"+eos = 8 tokens
    chosen_mask = batch.loss_mask[0].tolist()
    assert chosen_mask == [0, 1, 1, 1, 1, 0, 0, 0]  # y, e, s, <|im_end|>; padding (also id of <|im_end|>) excluded
    assert batch.input_ids[0, 4].item() == tok.eos_token_id and batch.input_ids[0, 5].item() == tok.pad_token_id
    assert batch.attention_mask[0].tolist() == [1, 1, 1, 1, 1, 0, 0, 0]
    assert batch.loss_mask[1].sum().item() == 7


def test_prompt_batches_are_left_padded():
    items = [(0, "a", [5, 6, 7], {}), (1, "b", [9], {})]
    b = collate_prompts(items, pad_id=2, split="test", pad_to_multiple_of=1)
    assert b.input_ids.tolist() == [[5, 6, 7], [2, 2, 9]]
    assert b.attention_mask.tolist() == [[1, 1, 1], [0, 0, 1]]


def test_ids_stable_unique_and_union(tmp_path):
    rows = make_rows(4)
    rows.append(dict(rows[0]))  # exact duplicate pair
    dm, _ = _dm(tmp_path, rows)
    dm.setup("fit")
    ids = dm.splits["train"].ids
    assert len(set(ids)) == 5 and ids[4] == ids[0] + "#1"
    dm2, _ = _dm(tmp_path, rows)
    dm2.setup("fit")
    assert dm2.splits["train"].ids == ids  # same content, same ids, every run
    # union of two sources keeps ids unique and metadata columns
    extra = write_jsonl(tmp_path / "v.jsonl", make_rows(2))
    dm3 = PreferenceDataModule(train=[str(tmp_path / "train.jsonl"), str(extra)], tokenizer="tiny-llama")
    dm3.setup("fit")
    split = dm3.splits["train"]
    assert len(split) == 7 and len(set(split.ids)) == 7
    assert split.rows[0]["group"] == "even" and split.rows[1]["relevant"] is False


def test_parquet_and_hub_path_on_local_files(tmp_path):
    rows = make_rows(6)
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "t.parquet")
    assert read_source(tmp_path / "t.parquet").rows == rows
    # the hub code path (datasets.load_dataset(NAME, CONFIG, split=...)) with NAME a local dataset folder
    hub = tmp_path / "hubdata"
    write_jsonl(hub / "train.jsonl", rows)
    write_jsonl(hub / "test.jsonl", make_rows(2, offset=50))
    src = read_source(f"hf:{hub}:test")
    assert src.name == f"hf:{hub}:test" and [r["prompt"] for r in src.rows] == [r["prompt"] for r in make_rows(2, 50)]
    with pytest.raises(DataError, match="could not load Hugging Face dataset"):
        read_source(f"hf:{tmp_path / 'missing'}:train")


def test_column_map(tmp_path):
    rows = [{"question": r["prompt"], "good": r["chosen"], "bad": r["rejected"]} for r in make_rows(3)]
    path = write_jsonl(tmp_path / "odd.jsonl", rows)
    dm = PreferenceDataModule(train=str(path), tokenizer="tiny-llama",
                              column_map={"prompt": "question", "chosen": "good", "rejected": "bad"})
    dm.setup("fit")
    assert dm.splits["train"].rows[0]["prompt"] == make_rows(1)[0]["prompt"]


def test_validate_source_requires_rows():
    from lit_iwpo.data.records import Source

    with pytest.raises(DataError, match="has no rows"):
        validate_source(Source("x.jsonl", []), "val")


def test_sampler_epochs_shards_and_resume():
    s = ResumableSampler().bind(10, seed=3, shuffle=True, rank=0, world_size=1)
    e0 = list(s)
    assert sorted(e0) == list(range(10))
    s.set_epoch(1)
    e1 = list(s)
    assert e1 != e0 and sorted(e1) == list(range(10))
    # resume mid-epoch 1 after 4 samples: continue exactly where the epoch was
    r = ResumableSampler().bind(10, seed=3, shuffle=True, rank=0, world_size=1)
    r.resume(epoch=1, skip=4)
    r.set_epoch(1)  # Lightning calls set_epoch with the restored epoch: skip survives
    assert list(r) == e1[4:]
    assert list(r) == e1  # skipping is one-shot
    # two ranks: equal shares that together cover every index
    a, b = (ResumableSampler().bind(5, seed=0, shuffle=True, rank=0, world_size=2),
            ResumableSampler().bind(5, seed=0, shuffle=True, rank=1, world_size=2))
    assert len(list(a)) == len(list(b)) == 3 and set(a) | set(b) == set(range(5))


def test_train_loader_order_is_seeded(pref_files):
    dm = PreferenceDataModule(train=str(pref_files["train"]), tokenizer="tiny-llama", batch_size=4, seed=1)
    dm.setup("fit")
    first = [b.ids for b in dm.train_dataloader()]
    again = [b.ids for b in dm.train_dataloader()]
    assert first == again and len(first) == 3
    rng_before = torch.get_rng_state()
    list(dm.train_dataloader())
    assert torch.equal(rng_before, torch.get_rng_state())  # iterating never draws from the global RNG


def test_predict_accepts_prompt_only_rows(tmp_path):
    path = write_jsonl(tmp_path / "prompts.jsonl", [{"prompt": "Hello?"}, {"prompt": [{"role": "user", "content": "Hi"}]}])
    dm = PreferenceDataModule(predict=str(path), tokenizer="tiny-llama", max_length=64, max_prompt_length=32)
    dm.setup("predict")
    split = dm.splits["predict"]
    assert split.pairs == [] and len(split.prompts) == 2 and len(set(split.ids)) == 2
    batch = next(iter(dm.predict_dataloader()))
    tok = byte_tokenizer()
    assert tok.decode(batch.input_ids[1][batch.attention_mask[1].bool()]) == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"prompt": ""}])
    with pytest.raises(DataError, match=r"bad.jsonl, row 1, field 'prompt': is empty"):
        PreferenceDataModule(predict=str(bad), tokenizer="tiny-llama").setup("predict")


def test_relevance_flags_accept_bools_and_01():
    import numpy as np

    from lit_iwpo.data.records import as_relevance

    assert [as_relevance(v) for v in (True, False, np.bool_(True), 1, 0)] == [True, False, True, True, False]
    assert [as_relevance(v) for v in (None, 2, "yes", float("nan"))] == [None, None, None, None]


# ----------------------------------------------------------------------------------- user-facing data errors
def _error(fn, *args, **kw) -> str:
    with pytest.raises(DataError) as err:
        fn(*args, **kw)
    return str(err.value)


def _fit_error(path, **kw) -> str:
    return _error(PreferenceDataModule(train=str(path), tokenizer="tiny-llama", **kw).setup, "fit")


def _line(row) -> bytes:
    return json.dumps(row).encode() + b"\n"


PAIRS = [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in make_rows(3)]


def test_non_utf8_file_names_file_and_line_and_bom_is_fine(tmp_path):
    jsonl = tmp_path / "latin.jsonl"
    jsonl.write_bytes(_line(PAIRS[0]) + b'{"prompt": "caf\xe9?", "chosen": "a", "rejected": "b"}\n')
    assert _fit_error(jsonl) == (
        f"{jsonl}, row 2: not UTF-8 text (line 2, byte 0xe9 at column 16); the file must be UTF-8: re-save it as "
        f"UTF-8, e.g. iconv -f latin1 -t utf-8 {jsonl} > {tmp_path / 'latin.utf8.jsonl'}")
    js = tmp_path / "latin.json"
    js.write_bytes(b"[\n" + json.dumps(PAIRS[0]).encode() + b',\n  {"prompt": "caf\xe9"}\n]')
    assert _error(read_source, js) == (
        f"{js}, line 3: not UTF-8 text (byte 0xe9 at column 18); the file must be UTF-8: re-save it as UTF-8, e.g. "
        f"iconv -f latin1 -t utf-8 {js} > {tmp_path / 'latin.utf8.json'}")
    u16 = tmp_path / "u16.jsonl"
    u16.write_bytes(_line(PAIRS[0]).decode().encode("utf-16"))
    assert _error(read_source, u16) == (f"{u16}: the file is UTF-16 text; it must be UTF-8: re-save it as UTF-8, "
                                        f"e.g. iconv -f UTF-16 -t utf-8 {u16} > {tmp_path / 'u16.utf8.jsonl'}")
    # a UTF-8 byte-order mark (as Windows editors write) just works
    bom_jsonl, bom_json = tmp_path / "bom.jsonl", tmp_path / "bom.json"
    bom_jsonl.write_bytes(b"\xef\xbb\xbf" + b"".join(_line(r) for r in PAIRS))
    bom_json.write_bytes(b"\xef\xbb\xbf" + json.dumps(PAIRS).encode())
    assert read_source(bom_jsonl).rows == PAIRS and read_source(bom_json).rows == PAIRS
    dm = PreferenceDataModule(train=str(bom_jsonl), tokenizer="tiny-llama")
    dm.setup("fit")
    assert dm.splits["train"].rows[0]["prompt"] == PAIRS[0]["prompt"]


def test_missing_columns_give_one_message_with_column_map_suggestion(tmp_path):
    odd = write_jsonl(tmp_path / "odd.jsonl", [{"question": r["prompt"], "good": r["chosen"], "bad": r["rejected"]}
                                               for r in PAIRS])
    assert _fit_error(odd) == (
        f"{odd}: missing columns 'prompt', 'chosen' and 'rejected' (no row has them); columns found: question, good, "
        "bad; map yours with data.column_map, e.g. --data.column_map '{prompt: question, chosen: good, rejected: bad}'")
    # a partial map: the suggestion keeps the user's entries
    assert _fit_error(odd, column_map={"prompt": "question"}) == (
        f"{odd}: missing columns 'chosen' and 'rejected' (no row has them); columns found: good, bad, prompt; map "
        "yours with data.column_map, e.g. --data.column_map '{prompt: question, chosen: good, rejected: bad}'")
    # other synonyms, matched case-insensitively
    syn = write_jsonl(tmp_path / "syn.jsonl", [{"Instruction": "q", "response_chosen": "a", "response_rejected": "b"}])
    assert _fit_error(syn).endswith(
        "e.g. --data.column_map '{prompt: Instruction, chosen: response_chosen, rejected: response_rejected}'")
    # nothing recognisable: a generic map
    xyz = write_jsonl(tmp_path / "xyz.jsonl", [{"x": "q", "y": "a", "z": "b"}])
    assert _fit_error(xyz) == (
        f"{xyz}: missing columns 'prompt', 'chosen' and 'rejected' (no row has them); columns found: x, y, z; rename "
        "your columns, or map them with data.column_map, e.g. --data.column_map "
        "'{prompt: COLUMN, chosen: COLUMN, rejected: COLUMN}' with COLUMN the name of your column")
    # a prompt under another name next to chosen/rejected is not read as an implicit prompt
    orca = write_jsonl(tmp_path / "orca.jsonl", [{"question": r["prompt"], "chosen": r["chosen"],
                                                  "rejected": r["rejected"]} for r in PAIRS])
    assert _fit_error(orca) == (
        f"{orca}: missing column 'prompt' (no row has it); columns found: question, chosen, rejected; map yours with "
        "data.column_map, e.g. --data.column_map '{prompt: question}'")
    # a column that other rows have keeps the per-row message
    rows = [dict(r) for r in PAIRS]
    del rows[1]["prompt"]
    some = write_jsonl(tmp_path / "some.jsonl", rows)
    assert _fit_error(some) == (
        f"1 problem(s) in split 'train' ({some}):\n"
        f"  {some}, row 2, field 'prompt': missing (other rows have it); add it to this row or remove the row")


def test_folder_and_unknown_suffix_say_which_sources_are_accepted(tmp_path):
    folder = tmp_path / "my_folder"
    write_jsonl(folder / "train.jsonl", PAIRS)
    assert _error(read_source, folder) == (
        f"{folder}: is a folder; read a dataset folder with hf:{folder.resolve()} (hf:NAME also accepts local "
        "folders), or give one of its .jsonl/.json/.parquet files")
    accepted = ("accepted: a .jsonl, .json or .parquet file; hf:NAME[:SPLIT][@CONFIG] (a Hugging Face dataset, or a "
                "local dataset folder as hf:/abs/path/to/folder); or scenario:NAME:SPLIT (an embedded scenario, see "
                "`lit_iwpo scenario list`)")
    txt = tmp_path / "data.txt"
    assert _error(read_source, txt) == f"{txt}: unknown source type '.txt'; {accepted}"
    assert _error(read_source, tmp_path / "d.csv") == (
        f"{tmp_path / 'd.csv'}: unknown source type '.csv'; {accepted}; convert it to .jsonl, or put it in a folder "
        "read as hf:/abs/path/to/folder")
    # the folder form it points to works
    assert read_source(f"hf:{folder.resolve()}").rows == PAIRS
    upper = write_jsonl(tmp_path / "UP.JSONL", PAIRS)  # suffixes are matched case-insensitively
    assert read_source(upper).rows == PAIRS


def _malformed_cases(tmp_path):
    """name -> (path or spec, column_map, expected message), for inputs new users get wrong."""
    def raw(name, data: bytes):
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        return p

    example = '[{"prompt": ..., "chosen": ..., "rejected": ...}, ...], or {"data": [...]}'
    obj = '{"prompt": ..., "chosen": ..., "rejected": ...}'
    odd = [{"question": r["prompt"], "good": r["chosen"], "bad": r["rejected"]} for r in PAIRS]
    no_rows = "split 'train' has no rows; it needs at least one record with prompt, chosen, rejected"
    cases = []
    p = raw("empty.jsonl", b"")
    cases.append((p, None, f"{p}: {no_rows}"))
    p = raw("empty.json", b"  \n")
    cases.append((p, None, f"{p}: {no_rows}"))
    p = raw("obj.json", json.dumps({"rows": PAIRS}).encode())
    cases.append((p, None, f"{p}: the top level is a JSON object with keys 'rows'; expected a list of records, "
                           f"{example}; the records seem to be under 'rows': name that key 'data'"))
    p = raw("one.json", json.dumps(PAIRS[0]).encode())
    cases.append((p, None, f"{p}: holds a single JSON object, not a list of records; wrap it in [...] (expected a "
                           f"list of records, {example})"))
    p = raw("num.json", b"42")
    cases.append((p, None, f"{p}: the top level is the number 42; expected a list of records, {example}"))
    p = raw("rows.jsonl", _line(PAIRS[0]) + b'["a", "b"]\n42\nnull\n')
    cases.append((p, None, f"3 problem(s) in split 'train' ({p}):\n"
                           f"  {p}, row 2: is a JSON list, not an object; each row must be an object like {obj}\n"
                           f"  {p}, row 3: is the number 42, not an object; each row must be an object like {obj}\n"
                           f"  {p}, row 4: is null, not an object; each row must be an object like {obj}"))
    p = raw("values.jsonl", _line(dict(PAIRS[0], chosen=3.5)) + _line(dict(PAIRS[1], prompt={"a": 1}))
            + _line(dict(PAIRS[2], rejected={"role": "assistant", "content": "x"})))
    cases.append((p, None, f"3 problem(s) in split 'train' ({p}):\n"
                           f"  {p}, row 1, field 'chosen': must be text or a list of chat messages, got float 3.5\n"
                           f"  {p}, row 2, field 'prompt': must be text or a list of chat messages, got dict "
                           "{'a': 1}\n"
                           f"  {p}, row 3, field 'rejected': must be text or a list of chat messages, got dict "
                           "{'role': 'assistant', 'content': 'x'} (one message: wrap it in a list, [{...}])"))
    p = raw("nulls.jsonl", _line(dict(PAIRS[0], prompt=None)))
    cases.append((p, None, f"1 problem(s) in split 'train' ({p}):\n"
                           f"  {p}, row 1, field 'prompt': is null; give text or a list of chat messages"))
    p = raw("msgs.jsonl", _line(dict(PAIRS[0], prompt=[{"content": "hi"}]))
            + _line(dict(PAIRS[1], chosen=[{"role": "assistant"}]))
            + _line(dict(PAIRS[2], rejected=[{"from": "gpt", "value": "x"}])))
    cases.append((p, None, f"3 problem(s) in split 'train' ({p}):\n"
                           f"  {p}, row 1, field 'prompt': message 0 must be a dict with 'role' and 'content', got "
                           "{'content': 'hi'} (no 'role')\n"
                           f"  {p}, row 2, field 'chosen': message 0 must be a dict with 'role' and 'content', got "
                           "{'role': 'assistant'} (no 'content')\n"
                           f"  {p}, row 3, field 'rejected': message 0 must be a dict with 'role' and 'content', got "
                           "{'from': 'gpt', 'value': 'x'} (ShareGPT-style 'from'/'value': rename them to "
                           "'role'/'content')"))
    p = raw("bad.parquet", b"not parquet")
    cases.append((p, None, f"{p}: not a readable Parquet file (Could not open Parquet input source '{p}': Parquet "
                           "magic bytes not found in footer. Either the file is corrupted or this is not a parquet "
                           "file.); re-export it (e.g. pandas.DataFrame.to_parquet) or give the data as .jsonl"))
    p = raw("lines.json", b"".join(_line(r) for r in PAIRS))
    cases.append((p, None, f"{p}: holds one JSON object per line (JSON Lines), not one JSON document; rename it to "
                           "lines.jsonl"))
    p = raw("pretty.jsonl", json.dumps(PAIRS, indent=2).encode())
    cases.append((p, None, f"{p}: holds one JSON document spread over several lines, not one JSON object per line; "
                           "rename it to pretty.json"))
    missing = tmp_path / "no_such_folder"
    cases.append((f"hf:{missing}", None,
                  f"hf:{missing}: could not load Hugging Face dataset '{missing}' split 'train': folder {missing} "
                  "does not exist; hf:PATH reads a local dataset folder (hf:/abs/path/to/folder[:SPLIT]), "
                  "hf:OWNER/NAME a Hugging Face hub dataset"))
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    cases.append((f"hf:{empty}", None,
                  f"hf:{empty}: could not load Hugging Face dataset '{empty}' split 'train': folder {empty} holds no "
                  f"loadable data (The directory at {empty} doesn't contain any data files); put the split's data "
                  "files in it (e.g. train.jsonl, test.jsonl; .json, .parquet and .csv also work), or give one file "
                  "directly as the source"))
    p = write_jsonl(tmp_path / "odd.jsonl", odd)
    cases.append((p, {"prompt": "qestion", "chosen": "good", "rejected": "bad"},
                  f"{p}: data.column_map names column 'qestion' (for 'prompt'), but no row has it; columns found: "
                  "question, good, bad; did you mean --data.column_map "
                  "'{prompt: question, chosen: good, rejected: bad}'?"))
    cases.append((p, {"question": "prompt", "good": "chosen", "bad": "rejected"},
                  "data.column_map: 'question', 'good', 'bad' are not prompt, chosen or rejected; the map goes "
                  "{prompt|chosen|rejected: YOUR_COLUMN}, did you mean "
                  "--data.column_map '{prompt: question, chosen: good, rejected: bad}'?"))
    cases.append((p, {"prompt": "question", "answer": "good"},
                  "data.column_map: 'answer' is not prompt, chosen or rejected; the map goes "
                  "{prompt|chosen|rejected: YOUR_COLUMN}, e.g. --data.column_map "
                  "'{prompt: question, chosen: good, rejected: bad}'"))
    return dict(zip(MALFORMED, cases, strict=True))


MALFORMED = ["empty_jsonl", "empty_json", "json_object_top_level", "json_single_record", "json_number_top_level",
             "rows_not_objects", "non_text_values", "null_field", "bad_messages", "corrupt_parquet", "json_is_jsonl",
             "jsonl_is_json", "hf_folder_missing", "hf_folder_empty", "column_map_unknown_column",
             "column_map_reversed", "column_map_bad_target"]


@pytest.mark.parametrize("case", MALFORMED)
def test_malformed_inputs_end_in_one_clear_data_error(tmp_path, case):
    source, column_map, expected = _malformed_cases(tmp_path)[case]
    assert _fit_error(source, column_map=column_map) == expected


def test_many_problems_show_a_summary_and_the_first_five(tmp_path):
    rows = [dict(r, chosen=None) for r in PAIRS] + [dict(PAIRS[i % 3], rejected=42) for i in range(30)]
    path = write_jsonl(tmp_path / "many.jsonl", rows)
    lines = _fit_error(path).split("\n")
    null = "is null; give text or a list of chat messages"
    num = "must be text or a list of chat messages, got int 42"
    assert lines == [
        f"33 problem(s) in split 'train' ({path}):",
        f"  {path}, row 1, field 'chosen': {null}",
        f"  {path}, row 2, field 'chosen': {null}",
        f"  {path}, row 3, field 'chosen': {null}",
        f"  {path}, row 4, field 'rejected': {num}",
        f"  {path}, row 5, field 'rejected': {num}",
        "  ... and 28 more",
    ]


# ----------------------------------------------------------------------------------- implicit prompt (TRL)
def _msg(role, content):
    return {"role": role, "content": content}


def test_extract_prompt_splits_like_trl():
    from lit_iwpo.data.records import extract_prompt

    # text: the common character prefix; a space just before the split stays with the responses (TRL's example)
    row = {"chosen": "The sky is blue.", "rejected": "The sky is green.", "id": 7}
    assert extract_prompt(row) == {"prompt": "The sky is", "chosen": " blue.", "rejected": " green.", "id": 7}
    assert row == {"chosen": "The sky is blue.", "rejected": "The sky is green.", "id": 7}  # pure
    # no space at the split: the split stays where the texts differ (even mid-word)
    assert extract_prompt({"chosen": "Q: 2+2=4", "rejected": "Q: 2+2=5"}) == {
        "prompt": "Q: 2+2=", "chosen": "4", "rejected": "5"}
    assert extract_prompt({"chosen": "Human: hi\n\nAssistant: Hello!", "rejected": "Human: hi\n\nAssistant: Go."}) == {
        "prompt": "Human: hi\n\nAssistant:", "chosen": " Hello!", "rejected": " Go."}
    assert extract_prompt({"chosen": "Say yes: yes", "rejected": "Say yes: yeah"}) == {
        "prompt": "Say yes: ye", "chosen": "s", "rejected": "ah"}
    # message lists: the common prefix of whole messages
    sys_, user = _msg("system", "Be brief."), _msg("user", "Sky?")
    a, b = _msg("assistant", "Blue."), _msg("assistant", "Blue!")
    assert extract_prompt({"chosen": [sys_, user, a], "rejected": [sys_, user, b]}) == {
        "prompt": [sys_, user], "chosen": [a], "rejected": [b]}
    u2 = _msg("user", "Sure?")
    assert extract_prompt({"chosen": [user, a, u2, a], "rejected": [user, a, u2, b, u2]}) == {
        "prompt": [user, a, u2], "chosen": [a], "rejected": [b, u2]}


@pytest.mark.parametrize("chosen, rejected, field, problem", [
    ("yes", "no", "prompt", "missing, and 'chosen' and 'rejected' do not begin the same way, so no prompt can be "
                            "taken from them"),
    (" yes", " no", "prompt", "missing, and 'chosen' and 'rejected' do not begin the same way, so no prompt can be "
                              "taken from them"),
    ([_msg("assistant", "a")], [_msg("assistant", "b")], "prompt",
     "missing, and 'chosen' and 'rejected' do not begin the same way, so no prompt can be taken from them"),
    ("Q? yes", "Q? yes, sure", "chosen", "is the beginning of 'rejected' (nothing of it is left as a response after "
                                         "the prompt they share); both must continue the shared prompt with a "
                                         "response of their own"),
    ([_msg("user", "Q"), _msg("assistant", "a"), _msg("user", "more?")], [_msg("user", "Q"), _msg("assistant", "a")],
     "rejected", "is the beginning of 'chosen' (nothing of it is left as a response after the prompt they share); "
                 "both must continue the shared prompt with a response of their own"),
    ("Q? a", "Q? a", "rejected", "is identical to 'chosen' (the pair carries no preference)"),
    ("Q? a", [_msg("user", "Q?")], "rejected", "is a message list but 'chosen' is text; give both as text or both as "
                                               "message lists"),
    (None, "Q? a", "chosen", "is null; give text or a list of chat messages"),
], ids=["text", "text-space", "messages", "text-prefix", "messages-prefix", "identical", "mixed", "null"])
def test_extract_prompt_errors_name_the_field(chosen, rejected, field, problem):
    from lit_iwpo.data.records import RowError, extract_prompt

    with pytest.raises(RowError) as err:
        extract_prompt({"chosen": chosen, "rejected": rejected})
    assert (err.value.field, err.value.problem) == (field, problem)
    assert str(err.value) == f"field '{field}': {problem}"


def _implicit_pairs():
    """(implicit rows, the equivalent explicit rows), text and message-list forms, worked out by hand."""
    text = ([{"chosen": "Q: what colour is the sky? A: blue", "rejected": "Q: what colour is the sky? A: green",
              "group": "a"},
             {"chosen": "Name a fruit. Apple", "rejected": "Name a fruit. Carrot", "group": "b"}],
            [{"prompt": "Q: what colour is the sky? A:", "chosen": " blue", "rejected": " green", "group": "a"},
             {"prompt": "Name a fruit.", "chosen": " Apple", "rejected": " Carrot", "group": "b"}])
    user, user2 = _msg("user", "What colour is the sky?"), _msg("user", "And grass?")
    blue, green, red = _msg("assistant", "Blue."), _msg("assistant", "Green."), _msg("assistant", "Red.")
    msgs = ([{"chosen": [user, blue], "rejected": [user, green]},
             {"chosen": [user, blue, user2, green], "rejected": [user, blue, user2, red]}],
            [{"prompt": [user], "chosen": [blue], "rejected": [green]},
             {"prompt": [user, blue, user2], "chosen": [green], "rejected": [red]}])
    return {"text": text, "messages": msgs}


@pytest.mark.parametrize("form", ["text", "messages"])
@pytest.mark.parametrize("template", [None, True, False])
def test_implicit_prompt_file_tokenizes_like_the_explicit_one(tmp_path, form, template):
    implicit, explicit = _implicit_pairs()[form]
    dms = []
    for name, rows in (("implicit", implicit), ("explicit", explicit)):
        path = write_jsonl(tmp_path / f"{name}.jsonl", rows)
        dm = PreferenceDataModule(train=str(path), val=str(path), tokenizer="tiny-llama", max_length=256,
                                  max_prompt_length=128, apply_chat_template=template)
        dm.setup("fit")
        dms.append(dm)
    got, want = dms[0].splits["train"], dms[1].splits["train"]
    assert [{k: r[k] for k in want.rows[0]} for r in got.rows] == want.rows  # the hand-worked split
    assert got.ids == want.ids
    assert got.pairs == want.pairs and len(got.pairs) == 2
    tok = byte_tokenizer()
    pair = got.pairs[1]
    prompt, chosen = tok.decode(pair.prompt), tok.decode(pair.chosen)
    if form == "text" and not template:
        assert (prompt, chosen) == ("Name a fruit.", " Apple<|im_end|>")
    elif form == "text":
        assert prompt.endswith("<|im_start|>user\nName a fruit.<|im_end|>\n<|im_start|>assistant\n")
        assert chosen == " Apple<|im_end|>"
    elif template is False:
        assert (prompt, chosen) == ("What colour is the sky?\nBlue.\nAnd grass?", "Green.<|im_end|>")
    else:
        assert prompt.endswith("<|im_start|>assistant\nBlue.<|im_end|>\n<|im_start|>user\nAnd grass?<|im_end|>\n"
                               "<|im_start|>assistant\n")
        assert chosen == "Green.<|im_end|>"
    batch = next(iter(dms[0].pair_dataloader("val")))
    assert batch.input_ids.shape[0] == 4


def test_implicit_prompt_only_without_prompt_column(tmp_path):
    # a prompt column (even on some rows) or a column_map for prompt turns extraction off
    rows = [{"prompt": "Q?", "chosen": "Q? yes", "rejected": "Q? no"}]
    dm = PreferenceDataModule(train=str(write_jsonl(tmp_path / "p.jsonl", rows)), tokenizer="tiny-llama")
    dm.setup("fit")
    assert dm.splits["train"].rows == rows
    mapped = [{"q": "Q?", "chosen": "Q? yes", "rejected": "Q? no"}]
    dm = PreferenceDataModule(train=str(write_jsonl(tmp_path / "m.jsonl", mapped)), tokenizer="tiny-llama",
                              column_map={"prompt": "q"})
    dm.setup("fit")
    assert dm.splits["train"].rows == [{"chosen": "Q? yes", "rejected": "Q? no", "prompt": "Q?"}]
    # predict on an implicit-prompt file generates for the extracted prompts
    implicit = write_jsonl(tmp_path / "i.jsonl", [{"chosen": "Q? yes", "rejected": "Q? no"}])
    dm = PreferenceDataModule(predict=str(implicit), tokenizer="tiny-llama")
    dm.setup("predict")
    assert byte_tokenizer().decode(dm.splits["predict"].prompts[0]) == "Q?"


def test_implicit_prompt_errors_name_file_row_field(tmp_path):
    rows = [{"chosen": "Q: sky? A: blue", "rejected": "Q: sky? A: green"},
            {"chosen": "yes", "rejected": "no"},
            {"chosen": "Q: sky? A: blue", "rejected": "Q: sky? A: blue, really"},
            [1, 2]]
    path = write_jsonl(tmp_path / "imp.jsonl", rows)
    assert _fit_error(path) == (
        f"3 problem(s) in split 'train' ({path}):\n"
        f"  {path}, row 2, field 'prompt': missing, and 'chosen' and 'rejected' do not begin the same way, so no "
        "prompt can be taken from them\n"
        f"  {path}, row 3, field 'chosen': is the beginning of 'rejected' (nothing of it is left as a response after "
        "the prompt they share); both must continue the shared prompt with a response of their own\n"
        f"  {path}, row 4: is a JSON list, not an object; each row must be an object like "
        '{"chosen": ..., "rejected": ...}\n'
        f"  ({path} has no 'prompt' column, so each row's prompt is taken from the common beginning of 'chosen' and "
        "'rejected', TRL's implicit-prompt format; if another column holds the prompt, map it with "
        "--data.column_map '{prompt: COLUMN}')")
    # no row shares a beginning: it is not the implicit format, the prompt column is simply missing
    plain = write_jsonl(tmp_path / "plain.jsonl", [{"text": "Q", "chosen": "yes", "rejected": "no"}] * 2)
    assert _fit_error(plain) == (
        f"{plain}: missing column 'prompt' (no row has it); columns found: text, chosen, rejected; rename your "
        "columns, or map them with data.column_map, e.g. --data.column_map '{prompt: COLUMN}' with COLUMN the name "
        "of your column (without a 'prompt' column the prompt is taken from the common beginning of 'chosen' and "
        "'rejected', TRL's implicit-prompt format, but they share none in any row)")


def test_template_that_does_not_extend_the_prompt_names_row_and_field():
    from lit_iwpo.data.records import Source

    tok = byte_tokenizer()
    tok.chat_template = ("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
                         "{% if add_generation_prompt %}ASSISTANT>{% endif %}")
    pt = PairTokenizer(tok, max_length=64, max_prompt_length=32, apply_chat_template=True)
    msg = _error(pt, Source("mem.jsonl", [{"prompt": "Q", "chosen": "yes", "rejected": "no"}]), "train")
    assert msg == ("mem.jsonl, row 1, field 'chosen': the chat template's rendering of prompt + response does not "
                   "begin with its rendering of the prompt alone; set data.apply_chat_template: false or use a "
                   "tokenizer whose template does")


def test_length_grouped_sampler_groups_lengths_keeps_every_row_and_shards():
    """Each group of 2 global batches is sorted by length, longest first; an epoch is the same multiset of rows
    as the plain shuffle; 2 ranks together see every row of each global batch once; padding per batch drops."""
    from lit_iwpo.data.sampler import LengthGroupedSampler, ResumableSampler

    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(10, 200, (40,), generator=g).tolist()
    plain = ResumableSampler().bind(40, seed=3, shuffle=True, rank=0, world_size=1)
    grouped = LengthGroupedSampler(group=2).bind(40, seed=3, shuffle=True, rank=0, world_size=1,
                                                 lengths=lengths, batch_size=4)
    order, base = grouped.order(0), plain.order(0)
    assert sorted(order) == sorted(base) == list(range(40))
    for i in range(0, 40, 8):  # a group: 2 batches of 4, the same rows as the shuffle's, sorted
        assert sorted(order[i:i + 8]) == sorted(base[i:i + 8])
        assert [lengths[j] for j in order[i:i + 8]] == sorted((lengths[j] for j in base[i:i + 8]), reverse=True)

    def padding(o):
        return sum(max(lengths[j] for j in o[b:b + 4]) * 4 - sum(lengths[j] for j in o[b:b + 4])
                   for b in range(0, 40, 4))

    assert padding(order) < padding(base)
    ranks = [LengthGroupedSampler(group=2).bind(40, seed=3, shuffle=True, rank=r, world_size=2,
                                                lengths=lengths, batch_size=2).order(0) for r in (0, 1)]
    for b in range(0, 20, 2):  # global batch b: rank 0's 2 rows and rank 1's 2 rows = a batch of the 1-rank order
        assert sorted(ranks[0][b:b + 2] + ranks[1][b:b + 2]) == sorted(order[2 * b:2 * b + 4])
