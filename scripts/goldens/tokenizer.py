# Writes Tests/TokenizerTests/Fixtures/tokenizer_ids.json: llama.cpp's token ids (through
# llama-cpp-python, vocab only) for the SmolLM2 tokenizer on a fixed list of strings, a fixed set of
# seeded random strings and one long (~4000-token) prompt, with llama.cpp's detokenization of each,
# the end-of-generation set and a hash of every token's piece.
#
# Run:  PY=$(scripts/goldens/venv) && "$PY" scripts/goldens/tokenizer.py [MODEL.gguf]
# The model defaults to $LORAD_TEST_MODEL, else models/SmolLM2-135M-Instruct.Q4_1.gguf.
# The output is deterministic (fixed seed, sorted keys); rerunning it must give the same file.
import json
import os
import random
import sys

import llama_cpp

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUT = os.path.join(ROOT, "Tests", "TokenizerTests", "Fixtures", "tokenizer_ids.json")

# (name, text). Names say what each case exercises; the Swift tests print them on failure.
CASES = [
    # empty and tiny
    ("empty", ""),
    ("space", " "),
    ("newline", "\n"),
    ("apostrophe", "'"),
    ("two-apostrophes", "''"),
    # ASCII prose
    ("hello", "Hello world! 123"),
    ("prose", "The quick brown fox jumps over the lazy dog."),
    ("prose-paragraph", "It was the best of times, it was the worst of times; it was the age of wisdom, "
                        "it was the age of foolishness. Punctuation: (a) [b] {c} -- d... e!? \"quoted\""),
    ("mixed-case", "HeLLo WORLD, iPhone eBay McDonald's NASA"),
    # contractions (the GPT-2 pattern matches lowercase ASCII ones only)
    ("contractions", "don't can't won't I'm you're we've they'll he'd it's"),
    ("contractions-upper", "DON'T I'M YOU'RE WE'VE THEY'LL HE'D IT'S"),
    ("contraction-curly", "it\u2019s don\u2019t"),
    ("contraction-edges", "'s 'sun 'll'll ''re rock'n'roll O'Neil 'twas"),
    # digits and numbers
    ("digits", "1234567890"),
    ("long-number", "31415926535897932384626433832795028841971693993751"),
    ("decimals", "3.14159 -2.5e10 1,000,000 0x1F 007"),
    ("digits-spaced", " 1 2  3   4"),
    ("arabic-indic-digits", "\u0663\u0664\u0665 and \u06f1\u06f2"),
    ("other-numbers", "\u00bd \u00b2 \u2167 x\u00b2+y\u00b2 \u2460\u2461"),
    ("date-time", "2024-01-15T10:30:00Z, 12:05pm"),
    # whitespace runs, tabs, newlines
    ("multiple-spaces", "  multiple   spaces"),
    ("trailing-spaces", "end with spaces   "),
    ("leading-spaces", "   leading"),
    ("only-spaces", "     "),
    ("space-newline-space", "a \n b"),
    ("newlines", "line1\nline2\n\nline4\n\n\n"),
    ("crlf", "windows\r\nline\r\n"),
    ("tabs", "col1\tcol2\t\tcol3\n\tindented"),
    ("mixed-whitespace", " \t\n x \n\t y\t \n"),
    ("whitespace-before-punct", "a   !  ?\t.\n,"),
    ("nbsp", "a\u00a0b \u00a0c\u00a0\u00a0d"),
    ("unicode-spaces", "a\u3000b\u2028c\u2029d\u2003e\u0085f\u202fg"),
    ("newline-runs", "\n" * 20),
    ("space-run-100", " " * 100),
    # accents
    ("accents", "Caf\u00e9 d\u00e9j\u00e0 vu."),
    ("accents-decomposed", "Cafe\u0301 de\u0301ja\u0300 vu."),
    ("accents-more", "na\u00efve fa\u00e7ade co\u00f6perate \u00c5ngstr\u00f6m \u00d1and\u00fa \u00df"),
    ("n-tilde", "\u00f1"),
    ("cyrillic", "\u041f\u0440\u0438\u0432\u0435\u0442, \u043c\u0438\u0440!"),
    ("greek", "\u0393\u03b5\u03b9\u03ac \u03c3\u03bf\u03c5 \u039a\u03cc\u03c3\u03bc\u03b5"),
    ("vietnamese", "Ti\u1ebfng Vi\u1ec7t c\u00f3 d\u1ea5u"),
    # CJK and other scripts
    ("chinese", "\u4f60\u597d\uff0c\u4e16\u754c\uff01"),
    ("japanese", "\u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8\u3067\u3059\u3002"),
    ("korean", "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8"),
    ("cjk-mixed", "GPU\u52a0\u901f and \u6df1\u5ea6\u5b66\u4e60 v2"),
    ("arabic", "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645"),
    ("hebrew", "\u05e9\u05dc\u05d5\u05dd \u05e2\u05d5\u05dc\u05dd"),
    ("devanagari", "\u0928\u092e\u0938\u094d\u0924\u0947 \u0926\u0941\u0928\u093f\u092f\u093e"),
    ("thai", "\u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35\u0e04\u0e23\u0e31\u0e1a"),
    ("rtl-marks", "abc\u200f\u05d0\u200e123"),
    # emoji with modifiers and joiners
    ("emoji", "\U0001f44d"),
    ("emoji-skin-tone", "\U0001f44d\U0001f3fd"),
    ("emoji-family-zwj", "\U0001f468\u200d\U0001f469\u200d\U0001f467\u200d\U0001f466"),
    ("emoji-rainbow-flag", "\U0001f3f3\ufe0f\u200d\U0001f308"),
    ("emoji-heart-vs16", "I \u2764\ufe0f NY \U0001f5fd"),
    ("emoji-flag", "\U0001f1eb\U0001f1f7 \U0001f1ef\U0001f1f5"),
    ("emoji-keycap", "1\ufe0f\u20e3 #\ufe0f\u20e3"),
    ("emoji-run", "\U0001f600" * 30),
    ("emoji-in-text", "Great job!\U0001f389\U0001f389 See you soon \U0001f44b\U0001f3fb."),
    # code
    ("python", "def fib(n):\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)\n"),
    ("c-code", "int main(void) {\n\tprintf(\"%d\\n\", x->y[0]);\n\treturn 0;\n}\n"),
    ("json", "{\"key\": [1, 2.5, null, true], \"nested\": {\"a\": \"b\"}}"),
    ("shell", "ls -la | grep '^d' && echo $HOME >> /tmp/out.txt 2>&1"),
    ("html", "<div class=\"x\"><a href='#'>link</a></div>"),
    ("regex-like", "^(?:[a-z0-9_-]+)\\.(?:com|org)$ \\s+\\p{L}"),
    ("swift-code", "let x: [Int32] = ids.map { Int32($0) } // comment"),
    ("operators", "a+=b; c!==d; e<=>f; g**h; i//j; k::l; m->n; o=>p"),
    # URLs
    ("url", "https://example.com/path/to/page?q=1&r=two#frag"),
    ("url-in-text", "See http://www.test.org/a_b-c.html, or mail me@host.io."),
    # special tokens (compared with special parsing on and off)
    ("chatml", "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"),
    ("endoftext", "<|endoftext|>"),
    ("special-inside-text", "text<|im_end|>more text"),
    ("special-adjacent", "<|im_start|><|im_start|><|im_end|>"),
    ("special-partial", "<|im_start <|im_end| |im_end|>"),
    ("special-spaced", "< |im_start| >"),
    ("special-jupyter", "<jupyter_code>print(1)<jupyter_output>1<empty_output>"),
    ("special-reponame", "<reponame>x<repo_name>y<filename>z"),
    ("special-with-spaces", " <|im_start|> user \n"),
    # bytes without a token (dropped by llama.cpp) and other raw bytes
    ("byte-04", "\u0004"),
    ("bytes-missing-mixed", "a\u0006b\u0013c\u0014d\u0016e\u001df"),
    ("byte-00", "\u0000"),
    ("control-chars", "\u0001\u0002\u0003\u0007\u001b[0m\u007f"),
    ("plane5-lead-f1", "\U00050000"),
    ("plane9-lead-f2", "x\U00090000y"),
    ("plane15-lead-f3", "\U000f0000"),
    ("plane16-lead-f4", "\U0010fffd"),
    ("zero-width", "a\u200bb\ufeffc\u2060d"),
    ("bom-start", "\ufeffHello"),
    ("private-use", "\ue000\uf8ff"),
    # code points assigned after the Unicode version of llama.cpp's tables
    ("unicode16-letter", "a\ua7cbb c\ua7cc"),
    ("unicode16-garay", "x \U000105c0\U000105c1 y"),
    # long runs
    ("a-run", "a" * 300),
    ("ab-run", "ab" * 200),
    ("equals-run", "=" * 80),
    ("dash-run", "-" * 64 + "\n" + "#" * 40),
    ("cjk-run", "\u6f22\u5b57" * 60),
]

# Characters the random strings are drawn from: every class the pre-tokenizer distinguishes, the
# pieces of contractions and special tokens, and bytes that have no token.
FUZZ_ALPHABET = (
    list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    + list("0123456789") + list("sStTmMdDrRvVeElL") * 2
    + list("''''  ") + list(" " * 10) + list("\t\n\r\x0b\x0c")
    + list("!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~")
    + list("<|>") * 3 + ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "im_", "_start"]
    + ["\u00e9", "\u00f1", "\u00fc", "\u0301", "\u0308", "\u00a0", "\u3000", "\u2028", "\u0085",
       "\u4e2d", "\u6587", "\u3042", "\ud55c", "\u0639", "\u05d0", "\u0915", "\u094d", "\u0e01",
       "\U0001f600", "\U0001f44d", "\U0001f3fd", "\u200d", "\ufe0f", "\u2764", "\U0001f1eb",
       "\u00bd", "\u00b2", "\u0663", "\u2167", "\u00a9", "\u20ac", "\u2014", "\u2019",
       "\u0000", "\U0010fffd", "\ua7cb", "\u200b", "\ufeff"]
)
# Characters whose UTF-8 contains a byte without a token (llama.cpp drops such bytes, so strings with
# them do not round-trip); only the last N_FUZZ_DROPPED random strings draw from these too.
FUZZ_DROPPED = ["\u0004", "\u0006", "\u0013", "\u001d", "\U00050000", "\U00090000"]
N_FUZZ = 120
N_FUZZ_DROPPED = 30
FUZZ_SEED = 20241124

# Paragraphs the ~4000-token prompt is built from (English prose, code, numbers, some Unicode).
LONG_PARTS = [
    "The tokenizer turns text into integer ids before the model sees it. A byte-level BPE tokenizer "
    "first splits the text into pieces with a regular expression, maps every byte to a printable "
    "character, and then merges adjacent symbols in the order the merge table gives, until no "
    "adjacent pair has a rank.",
    "In 1969, the Apollo 11 mission landed on the Moon; Neil Armstrong said: \"That's one small step "
    "for a man, one giant leap for mankind.\" The descent took 12 minutes and 32 seconds.",
    "def tokenize(text: str) -> list[int]:\n    pieces = split(text)\n    ids = []\n    for p in "
    "pieces:\n        ids.extend(bpe(p))\n    return ids\n",
    "Les \u00e9l\u00e8ves ont \u00e9t\u00e9 tr\u00e8s attentifs pendant la le\u00e7on; ils ont pos\u00e9 "
    "beaucoup de questions \u00e0 propos de l'histoire de France.",
    "| id | name | score |\n|----|------|-------|\n| 1 | alpha | 0.93 |\n| 2 | beta | 0.87 |\n",
    "\u6df1\u5ea6\u5b66\u4e60\u6a21\u578b\u9700\u8981\u5927\u91cf\u7684\u6570\u636e\u3002 Emoji: "
    "\U0001f680\U0001f30d\U0001f44d\U0001f3fd",
    "You are a helpful assistant. Answer the user's questions concisely, and when you don't know "
    "something, say so instead of guessing. Keep answers under 200 words unless asked otherwise.",
    "SELECT name, COUNT(*) AS n FROM users WHERE created_at >= '2024-01-01' GROUP BY name ORDER BY "
    "n DESC LIMIT 10;",
]
LONG_SEED = 7
LONG_TARGET_TOKENS = 4000


def main():
    model = (sys.argv[1] if len(sys.argv) > 1 else
             os.environ.get("LORAD_TEST_MODEL") or os.path.join(ROOT, "models", "SmolLM2-135M-Instruct.Q4_1.gguf"))
    llm = llama_cpp.Llama(model_path=model, vocab_only=True, verbose=False)
    vocab = llama_cpp.llama_model_get_vocab(llm.model)
    n_vocab = llama_cpp.llama_vocab_n_tokens(vocab)

    def tokenize(text, special):
        return llm.tokenize(text.encode("utf-8"), add_bos=False, special=special)

    def detokenize(ids, render_special):
        # llama_detokenize, not Llama.detokenize: the latter copies each piece through a 32-byte buffer.
        arr = (llama_cpp.llama_token * len(ids))(*ids)
        size = 64 + 256 * len(ids)
        buf = (llama_cpp.ctypes.c_char * size)()
        n = llama_cpp.llama_detokenize(vocab, arr, len(ids), buf, size, False, render_special)
        assert 0 <= n <= size, n
        return bytes(buf[:n])

    def piece(tid, special):
        buf = (llama_cpp.ctypes.c_char * 512)()
        n = llama_cpp.llama_token_to_piece(vocab, tid, buf, 512, 0, special)
        assert 0 <= n <= 512, n
        return bytes(buf[:n])

    def case(name, text):
        ids = tokenize(text, True)
        ids_plain = tokenize(text, False)
        encoded = text.encode("utf-8")
        return {
            "name": name,
            "text": text,
            "ids": ids,                      # special parsing on
            "ids_no_special": ids_plain,     # special parsing off
            # llama.cpp's detokenization of `ids`, rendering control tokens or not (hex: may be invalid UTF-8)
            "decoded_render_hex": detokenize(ids, True).hex(),
            "decoded_plain_hex": detokenize(ids, False).hex(),
            "decoded_no_special_hex": detokenize(ids_plain, False).hex(),
            # does llama.cpp round-trip this string? (special on + rendered; special off + plain)
            "roundtrip": detokenize(ids, True) == encoded,
            "roundtrip_no_special": detokenize(ids_plain, False) == encoded,
        }

    cases = [case(name, text) for name, text in CASES]

    rng = random.Random(FUZZ_SEED)
    for i in range(N_FUZZ):
        alphabet = FUZZ_ALPHABET + (FUZZ_DROPPED * 3 if i >= N_FUZZ - N_FUZZ_DROPPED else [])
        length = rng.randint(1, 40)
        cases.append(case(f"fuzz-{i}", "".join(rng.choice(alphabet) for _ in range(length))))

    names = [c["name"] for c in cases]
    assert len(names) == len(set(names)), "duplicate case names"

    # The long prompt: paragraphs in a seeded order until it reaches the target token count.
    rng = random.Random(LONG_SEED)
    parts = []
    while len(tokenize("\n\n".join(parts), True)) < LONG_TARGET_TOKENS:
        parts.append(rng.choice(LONG_PARTS))
    long_text = "\n\n".join(parts)
    long_ids = tokenize(long_text, True)

    # A hash of every token's piece (u32 little-endian length, then the bytes), rendered and plain.
    # FNV-1a 64 (http://www.isthe.com/chongo/tech/comp/fnv/): trivial to recompute in the Swift test.
    def pieces_fnv1a64(special):
        h = 0xCBF29CE484222325
        for tid in range(n_vocab):
            p = piece(tid, special)
            for byte in len(p).to_bytes(4, "little") + p:
                h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
        return f"{h:016x}"

    fixture = {
        "generator": "scripts/goldens/tokenizer.py",
        "llama_cpp_python": llama_cpp.__version__,
        "model": os.path.basename(model),
        "vocab_size": n_vocab,
        "bos": llama_cpp.llama_vocab_bos(vocab),
        "eos": llama_cpp.llama_vocab_eos(vocab),
        "eog": [t for t in range(n_vocab) if llama_cpp.llama_vocab_is_eog(vocab, t)],
        "control": [t for t in range(n_vocab) if llama_cpp.llama_vocab_is_control(vocab, t)],
        "pieces_render_fnv1a64": pieces_fnv1a64(True),
        "pieces_plain_fnv1a64": pieces_fnv1a64(False),
        "cases": cases,
        "long": {"text": long_text, "ids": long_ids},
    }
    # ASCII only (no editor can normalise the texts), one case per line so diffs stay readable.
    def compact(value):
        return json.dumps(value, ensure_ascii=True, sort_keys=True, separators=(",", ":"))
    lines = ["{"]
    for key in sorted(k for k in fixture if k not in ("cases", "long")):
        lines.append(f" {compact(key)}:{compact(fixture[key])},")
    lines.append(' "cases":[')
    lines.append(",\n".join("  " + compact(c) for c in cases))
    lines.append(" ],")
    lines.append(f' "long":{compact(fixture["long"])}')
    lines.append("}")
    with open(OUT, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    json.load(open(OUT, encoding="utf-8"))  # still valid JSON
    rt = sum(c["roundtrip"] for c in cases)
    print(f"wrote {OUT}: {len(cases)} cases ({rt} round-trip in llama.cpp), long prompt {len(long_ids)} tokens, "
          f"{os.path.getsize(OUT)} bytes")


if __name__ == "__main__":
    main()
