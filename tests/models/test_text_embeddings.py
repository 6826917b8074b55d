"""Instruction-embedding cache: building with a tiny local T5, file round trip, errors, CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import transformers  # test-only dependency, pinned in requirements/dev.txt

from a2w.cli import main as a2w_main
from a2world.text_embeddings import (
    MissingInstructionError,
    TextEmbeddingCache,
    build_text_embeddings,
    read_instruction_lines,
)

WORDS = "pick up the red cube and place it in bowl fold towel open drawer".split()


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised 2-layer T5 encoder and a word-level tokenizer, saved locally."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors

    path = tmp_path_factory.mktemp("tiny-t5")
    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2, **{w: i + 3 for i, w in enumerate(WORDS)}}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    fast = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tk, pad_token="<pad>", eos_token="</s>", unk_token="<unk>"
    )
    fast.save_pretrained(path)
    config = transformers.T5Config(
        vocab_size=len(vocab), d_model=32, d_kv=8, d_ff=64, num_layers=2, num_heads=4, pad_token_id=0, eos_token_id=1
    )
    torch.manual_seed(0)
    transformers.T5EncoderModel(config).save_pretrained(path)
    return path


def test_builder_matches_the_encoder_on_the_real_tokens(t5_dir: Path) -> None:
    instructions = ["pick up the red cube", "  fold the towel  ", "open drawer"]
    cache = build_text_embeddings(t5_dir, instructions, batch_size=2)
    assert cache.instructions == ["pick up the red cube", "fold the towel", "open drawer"]
    assert (cache.max_length, cache.dim) == (512, 32)
    model = transformers.T5EncoderModel.from_pretrained(t5_dir).eval()
    tok = transformers.AutoTokenizer.from_pretrained(t5_dir)
    for text in cache.instructions:
        ids = tok(text, return_tensors="pt")["input_ids"]  # unpadded: the reference for padded+masked
        with torch.no_grad():
            expected = model(input_ids=ids).last_hidden_state[0]
        emb = cache.get(text)
        assert emb.shape == (512, 32)
        n = ids.shape[1]
        assert cache.num_tokens(text) == n == len(text.split()) + 1  # words + </s>
        torch.testing.assert_close(emb[:n], expected, rtol=1e-4, atol=1e-5)
        assert not emb[n:].any()
        assert cache.mask(text).sum().item() == n


def test_file_round_trip_and_lookup_errors(t5_dir: Path, tmp_path: Path) -> None:
    cache = build_text_embeddings(t5_dir, ["pick up the red cube", "open drawer"])
    path = tmp_path / "emb.safetensors"
    cache.save(path)
    back = TextEmbeddingCache.load(path)
    assert back.instructions == cache.instructions and back.encoder == t5_dir.name
    for text in cache.instructions:
        assert torch.equal(back.get(text), cache.get(text))
    assert back.get("open drawer", dtype=torch.bfloat16).dtype == torch.bfloat16
    with pytest.raises(KeyError) as info:
        back.get("fold the towel")
    assert isinstance(info.value, MissingInstructionError) and isinstance(info.value, LookupError)
    assert "fold the towel" in str(info.value) and str(path) in str(info.value)


def test_loading_needs_no_text_model(t5_dir: Path, tmp_path: Path) -> None:
    path = tmp_path / "emb.safetensors"
    build_text_embeddings(t5_dir, ["open drawer"]).save(path)
    code = (
        "import sys; from a2world.text_embeddings import TextEmbeddingCache as C; "
        f"e = C.load({str(path)!r}).get('open drawer'); "
        "assert 'transformers' not in sys.modules, 'transformers was imported'; print(tuple(e.shape))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(512, 32)"


def test_cache_validates_what_it_stores() -> None:
    cache = TextEmbeddingCache(max_length=4, dim=3)
    with pytest.raises(ValueError, match="n_tokens, 3"):
        cache.add("x", torch.zeros(2, 5))
    with pytest.raises(ValueError, match="outside 1..4"):
        cache.add("x", torch.zeros(5, 3))
    with pytest.raises(ValueError, match="non-empty"):
        cache.add("   ", torch.zeros(1, 3))
    other = TextEmbeddingCache(max_length=8, dim=3)
    with pytest.raises(ValueError, match="cannot merge"):
        cache.merge(other)


def test_instruction_file_lines() -> None:
    assert read_instruction_lines(["# comment", "", " open drawer ", "fold towel", "open drawer"]) == [
        "open drawer",
        "fold towel",
    ]


def test_cli_build_append_list_show(t5_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "cache.safetensors"
    listing = tmp_path / "instructions.txt"
    listing.write_text("# rig tasks\npick up the red cube\n\nopen drawer\n")
    assert a2w_main(["text-cache", "build", "--t5", str(t5_dir), "--out", str(out), "-f", str(listing)]) == 0
    assert a2w_main(["text-cache", "build", "--t5", str(t5_dir), "--out", str(out), "--append",
                     "-i", "fold towel"]) == 0
    assert TextEmbeddingCache.load(out).instructions == ["pick up the red cube", "open drawer", "fold towel"]
    capsys.readouterr()
    assert a2w_main(["text-cache", "list", str(out)]) == 0
    text = capsys.readouterr().out
    assert "3 instructions" in text and "   3 tokens  open drawer" in text
    assert a2w_main(["text-cache", "show", str(out), "fold towel"]) == 0
    assert "shape: (512, 32)  tokens: 3" in capsys.readouterr().out
    assert a2w_main(["text-cache", "show", str(out), "wave hello"]) == 1
    err = capsys.readouterr().err
    assert "wave hello" in err and str(out) in err
    assert a2w_main(["text-cache", "list", str(tmp_path / "missing.safetensors")]) == 1
    assert a2w_main(["text-cache", "build", "--t5", str(t5_dir), "--out", str(out)]) == 2
