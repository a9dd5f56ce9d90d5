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
