"""Tiny random-weight models built locally, for pipeline tests and offline use.

Nothing here is downloaded: tokenizers are trained on English text generated
below, weights are random. The models babble; they exist so the whole
pipeline (and its tests) runs without network. Never use them to talk to.

- `ensure_tiny_llm()`: the `--profile test` LLM ("tiny-random"), a ~0.2 M
  parameter Qwen2-style causal LM with a chat template, cached on disk.
  Its output rows are shaped so that greedy decoding yields real English
  words (every token it can pick is a whole word, "." or ","), so TTS always
  has something to say.
- `build_tiny_whisper_ct2(out_dir)`: a random Whisper, converted to
  CTranslate2 for faster-whisper.
- `build_tiny_piper_voice(out_dir)`: a random VITS voice exported to ONNX the
  way piper's training code exports it, with its config JSON.
"""
from __future__ import annotations

import json
import logging
import os
import random
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

from duplex.models.hub import cache_root

log = logging.getLogger(__name__)

TINY_LLM_NAME = "tiny-random"
TINY_LLM_VERSION = 2  # bump when the build changes; older caches are rebuilt
MARKER = "duplex-tiny.json"

WORDS = ["the", "a", "one", "two", "three", "we", "you", "they", "it", "this", "that", "here", "there", "now", "then", "today", "soon", "good", "nice", "fine", "great", "small", "big", "long", "short", "warm", "cold", "bright", "quiet", "happy", "simple", "clear", "day", "night", "morning", "evening", "week", "year", "time", "moment", "minute", "road", "river", "hill", "garden", "house", "room", "window", "door", "table", "chair", "book", "letter", "story", "song", "voice", "sound", "music", "water", "light", "rain", "snow", "wind", "sun", "sky", "cloud", "tree", "flower", "apple", "bread", "coffee", "tea", "dinner", "lunch", "city", "town", "street", "market", "station", "train", "bus", "car", "boat", "plane", "friend", "family", "people", "teacher", "doctor", "child", "mother", "father", "sister", "brother", "name", "place", "world", "weather", "answer", "question", "idea", "plan", "is", "are", "was", "be", "have", "has", "do", "does", "go", "goes", "come", "comes", "see", "look", "like", "love", "want", "need", "know", "think", "say", "tell", "ask", "give", "take", "make", "help", "find", "keep", "walk", "talk", "read", "write", "sing", "play", "open", "close", "start", "stop", "wait", "turn", "move", "live", "feel", "hear", "call", "try", "will", "can", "may", "should", "would", "very", "really", "quite", "just", "also", "still", "again", "always", "often", "never", "maybe", "sure", "yes", "no", "please", "thanks", "hello", "okay", "well", "so", "and", "but", "or", "because", "when", "where", "what", "how", "why", "who", "with", "for", "from", "into", "over", "under", "about", "near", "after", "before", "around", "between", "today", "tomorrow", "yesterday", "paris", "london", "berlin", "rome", "tokyo", "sunny", "windy", "cloudy", "rainy", "lovely"]

SPECIAL_LLM = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
WHISPER_SPECIALS = ["<|endoftext|>", "<|startoftranscript|>", "<|translate|>", "<|transcribe|>",
                    "<|startoflm|>", "<|startofprev|>", "<|nocaptions|>", "<|notimestamps|>"]


def english_corpus(n_sentences: int = 3000, seed: int = 0) -> list[str]:
    """Simple English sentences made from WORDS (deterministic)."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n_sentences):
        words = [rng.choice(WORDS) for _ in range(rng.randint(3, 12))]
        sentence = " ".join(words)
        lines.append(sentence[0].upper() + sentence[1:] + rng.choice([".", "?", "!", ",", "."]))
    return lines


def train_bpe(vocab_size: int, seed: int = 0):
    """A byte-level BPE tokenizer (tokenizers library) trained on `english_corpus`."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(english_corpus(seed=seed), trainer)
    return tok


def _speakable_ids(tok) -> list[int]:
    """Ids of tokens that are a whole word of WORDS (with its leading space), "." or ","."""
    vocab = tok.get_vocab()
    wanted = {"Ġ" + w for w in WORDS} | {".", ","}
    return sorted(i for t, i in vocab.items() if t in wanted)


def _shape_output_rows(weight, keep: list[int], end_id: int, end_scale: float, seed: int) -> None:
    """Zero every output row except the speakable `keep` ones and the end token's.

    Kept rows are random with norm 8; hidden states are random too, so the
    argmax over them is almost surely positive and beats every zero row:
    greedy decoding only picks kept tokens. The end token's row is longer
    (`end_scale`), which sets how soon outputs end. In place, on an output
    embedding [vocab, hidden].
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        weight.zero_()
        rows = torch.randn(len(keep), weight.shape[1], generator=gen)
        weight[keep] = rows / rows.norm(dim=1, keepdim=True) * 8.0
        end = torch.randn(weight.shape[1], generator=gen)
        weight[end_id] = end / end.norm() * end_scale


def _is_current(target: Path, version: int) -> bool:
    marker = target / MARKER
    return marker.is_file() and json.loads(marker.read_text()).get("version") == version


def _atomic_build(target: Path, build, version: int) -> Path:
    """Build into a temp dir beside `target`, then rename it into place.

    Concurrent builders race harmlessly: the first rename wins, the others
    discard their copy. A directory from another build version is replaced.
    """
    if _is_current(target, version):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        os.chmod(tmp, 0o755)
        build(tmp)
        (tmp / MARKER).write_text(json.dumps({"version": version, "random_weights": True}))
        if target.exists() and not _is_current(target, version):  # an old build: move it aside
            stale = Path(tempfile.mkdtemp(prefix=f".{target.name}-old-", dir=target.parent))
            try:
                os.replace(target, stale / "old")
            except OSError:
                pass  # another builder moved it first
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.rename(tmp, target)
        except OSError:
            if not _is_current(target, version):  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _build_llm(out: Path, seed: int = 0) -> None:
    import torch
    from transformers import (
        GenerationConfig,
        PreTrainedTokenizerFast,
        Qwen2Config,
        Qwen2ForCausalLM,
    )

    tok = train_bpe(vocab_size=1024, seed=seed)
    tok.add_special_tokens(SPECIAL_LLM)
    ids = {t: tok.token_to_id(t) for t in SPECIAL_LLM}
    hf_tok = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>",
                                     pad_token="<|endoftext|>", chat_template=CHAT_TEMPLATE)
    hf_tok.save_pretrained(out)
    config = Qwen2Config(
        vocab_size=tok.get_vocab_size(), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        tie_word_embeddings=False, bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen2ForCausalLM(config)
    # End row barely longer than the words': answers are word strings that usually run to
    # max_new_tokens (greedy EOS timing cannot be steered through random weights).
    _shape_output_rows(model.lm_head.weight, _speakable_ids(tok), ids["<|im_end|>"], 12.0, seed)
    model.generation_config = GenerationConfig(eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"],
                                               min_new_tokens=3)
    model.save_pretrained(out)
    (out / "README.md").write_text("Random-weight pipeline-test model built by duplex.models.tiny. "
                                   "It babbles; it is not a language model you can talk to.\n")


def ensure_tiny_llm(cache_dir: str | Path | None = None) -> Path:
    """The tiny random chat LLM directory, built once (~1 s) and cached.

    Default location: $DUPLEX_CACHE/tiny-random-llm (~/.cache/duplex/...).
    """
    target = Path(cache_dir).expanduser() if cache_dir else cache_root() / "tiny-random-llm"
    return _atomic_build(target, _build_llm, TINY_LLM_VERSION)


def announce_tiny_model(what: str = "LLM") -> None:
    """Say loudly, on stderr and in the log, that a random pipeline-test model is in use."""
    bar = "!" * 72
    text = (f"{bar}\n!! PIPELINE-TEST {what}: '{TINY_LLM_NAME}' has RANDOM WEIGHTS.\n"
            f"!! It babbles random words. It is for testing the pipeline only.\n"
            f"!! Set llm.model to a real chat model (e.g. Qwen/Qwen2.5-0.5B-Instruct) to talk.\n{bar}")
    print(text, file=sys.stderr, flush=True)
    log.warning("PIPELINE-TEST %s %r with random weights in use (not a real model)", what, TINY_LLM_NAME)


def build_tiny_whisper_ct2(out_dir: str | Path, seed: int = 0) -> Path:
    """A random English-only Whisper (d_model 64, 1+1 layers) in CTranslate2 format.

    The directory holds what faster-whisper loads: model.bin, config.json,
    vocabulary.json, tokenizer.json and preprocessor_config.json. Like the
    tiny LLM, its text rows are limited to whole words so transcripts are words.
    """
    import ctranslate2
    import torch
    from transformers import (
        GenerationConfig,
        PreTrainedTokenizerFast,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
    )

    out = Path(out_dir)
    tok = train_bpe(vocab_size=512, seed=seed)
    # Whisper's layout: text tokens, then the specials, then one token per 20 ms timestamp.
    tok.add_special_tokens(WHISPER_SPECIALS + ["<|%.2f|>" % (i * 0.02) for i in range(1501)])
    eot, sot = tok.token_to_id("<|endoftext|>"), tok.token_to_id("<|startoftranscript|>")
    with tempfile.TemporaryDirectory() as hf_dir:
        PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>",
                                unk_token="<|endoftext|>", pad_token="<|endoftext|>").save_pretrained(hf_dir)
        WhisperFeatureExtractor(feature_size=80).save_pretrained(hf_dir)
        config = WhisperConfig(
            vocab_size=tok.get_vocab_size(), num_mel_bins=80, d_model=64, encoder_layers=1,
            decoder_layers=1, encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=128,
            decoder_ffn_dim=128, max_source_positions=1500, max_target_positions=448,
            decoder_start_token_id=sot, bos_token_id=eot, eos_token_id=eot, pad_token_id=eot,
            suppress_tokens=[], begin_suppress_tokens=[eot], tie_word_embeddings=False)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = WhisperForConditionalGeneration(config)
        # A long end row: transcripts are a few words, so decodes stay cheap.
        _shape_output_rows(model.proj_out.weight, _speakable_ids(tok), eot, 16.0, seed)
        model.generation_config = GenerationConfig(
            decoder_start_token_id=sot, eos_token_id=eot, pad_token_id=eot, suppress_tokens=[],
            begin_suppress_tokens=[eot], no_timestamps_token_id=tok.token_to_id("<|notimestamps|>"))
        model.save_pretrained(hf_dir)
        converter = ctranslate2.converters.TransformersConverter(
            hf_dir, copy_files=["tokenizer.json", "preprocessor_config.json"])
        converter.convert(str(out), force=True)
    return out


def build_tiny_piper_voice(out_dir: str | Path, seed: int = 0, sample_rate: int = 22050) -> Path:
    """A random tiny VITS voice as piper loads it: `<out_dir>/tiny-random.onnx` + `.onnx.json`.

    The generator is piper's own (`piper.train.vits.models.SynthesizerTrn`),
    exported as `piper.train.export_onnx` does (same inputs, scales, opset);
    that script itself needs `lightning` for checkpoints, which we skip.
    """
    import torch
    from piper.phoneme_ids import DEFAULT_PHONEME_ID_MAP
    from piper.train.vits.models import SynthesizerTrn

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    num_symbols = 256  # piper's default symbol table size
    # piper's VITS code triggers weight_norm deprecation and tracer warnings; they are expected.
    with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.manual_seed(seed)
        gen = SynthesizerTrn(
            n_vocab=num_symbols, spec_channels=513, segment_size=32, inter_channels=16,
            hidden_channels=16, filter_channels=32, n_heads=2, n_layers=1, kernel_size=3,
            p_dropout=0.0, resblock="2", resblock_kernel_sizes=(3,), resblock_dilation_sizes=((1, 2),),
            upsample_rates=(8, 8, 4), upsample_initial_channel=32, upsample_kernel_sizes=(16, 16, 8),
            n_speakers=1, gin_channels=0, use_sdp=True)
        gen.eval()
        with torch.no_grad():
            gen.dec.remove_weight_norm()

        def infer_forward(text, text_lengths, scales, sid=None):
            return gen.infer(text, text_lengths, noise_scale=scales[0], length_scale=scales[1],
                             noise_scale_w=scales[2], sid=sid)[0].unsqueeze(1)

        gen.forward = infer_forward
        dummy = (torch.randint(0, num_symbols, (1, 50)), torch.LongTensor([50]),
                 torch.FloatTensor([0.667, 1.0, 0.8]), None)
        onnx_path = out / "tiny-random.onnx"
        torch.onnx.export(
            model=gen, args=dummy, f=str(onnx_path), verbose=False, opset_version=15, dynamo=False,
            input_names=["input", "input_lengths", "scales", "sid"], output_names=["output"],
            dynamic_axes={"input": {0: "batch_size", 1: "phonemes"}, "input_lengths": {0: "batch_size"},
                          "output": {0: "batch_size", 2: "time"}})
    config = {
        "audio": {"sample_rate": sample_rate}, "espeak": {"voice": "en-us"}, "phoneme_type": "espeak",
        "num_symbols": num_symbols, "num_speakers": 1, "phoneme_id_map": DEFAULT_PHONEME_ID_MAP,
        "inference": {"noise_scale": 0.667, "length_scale": 1.0, "noise_w": 0.8}, "hop_length": 256,
    }
    Path(f"{onnx_path}.json").write_text(json.dumps(config, ensure_ascii=False))
    return onnx_path
