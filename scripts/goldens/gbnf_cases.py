# Writes Tests/GrammarTests/Fixtures/gbnf_llama_cpp.json: llama.cpp's own token masks for GBNF grammars
# from its grammars/ directory (json, json_arr, arithmetic, list, chess, japanese, c, english), taken
# from llama-cpp-python 0.3.36's vendored llama.cpp (an implementation independent of lorad's). For
# each grammar, a few strings (whole sentences, unfinished prefixes, and strings with a wrong
# character) are tokenized by llama.cpp (no BOS, no special-token parsing) and walked token by token
# through llama.cpp's grammar sampler (llama_sampler_apply over the whole vocabulary at logit 0, then
# llama_sampler_accept). At each position the fixture records the set of tokens llama.cpp allows
# next, restricted to the tokens whose GGUF type is NORMAL or BYTE (lorad never lets control or
# user-defined tokens be constrained text), whether end of generation is allowed, and the token
# llama.cpp refuses, if one is.
#
# A set is stored as its size and its FNV-1a 64 checksum (over the ascending ids, each a
# little-endian UInt32; offset basis 0xcbf29ce484222325, prime 0x100000001b3) in 16 hex digits, plus
# the ids when at most 64 are allowed ("ids"), the universe's ids not allowed when at most 64 are
# not ("disallowed"), or else the index of a bitmap over the vocabulary in "bitmaps" (base64, least
# significant bit first; steps with the same set share one), so that every set is there in full.
#
# The Swift test (GBNFGoldenTests) parses each grammar with GBNF.parse, walks the same tokens with
# GrammarMatcher over the real vocabulary's trie, and checks at every recorded position that lorad's
# mask is llama.cpp's set (less the "invalid_utf8" ids, below), printing the differing tokens when
# it is not; that `accepts` is llama.cpp's end-of-generation decision; and that the first token
# refused is the one llama.cpp refuses.
#
# Run from the repository root (deterministic; the first run of scripts/goldens/venv builds
# llama.cpp, 10-20 minutes on 2 cores):
#   PY=$(scripts/goldens/venv) && "$PY" scripts/goldens/gbnf_cases.py [--grammars DIR] [--model GGUF]
# Without --grammars the script downloads the llama-cpp-python 0.3.36 sdist from PyPI (checking its
# sha256) and reads grammars/ from the llama.cpp it vendors.
#
# What llama.cpp does here that an engine matching it must know (llama-grammar.cpp; each seen in
# the fixture unless said otherwise):
# - It decodes token pieces into code points and matches code points, carrying an unfinished
#   character from one token to the next. A piece ending inside a character is allowed when the
#   code points it could still become meet the class at that position. For a negated class the test
#   is reversed: such a piece is refused as soon as ANY excluded character could follow, even if
#   allowed ones could too. list.gbnf excludes \x85, U+2028 and U+2029, so in an item "\xc2",
#   "\xe2", "\xe2\x80" and " \xe2\x80" are refused though U+00A0 or U+2010 would be fine; the
#   case "- line\u2028sep" is refused at the piece "\xe2\x80", not at the "\xa8" after it.
# - Its decoder checks continuation bytes only for a character begun in an earlier token, and
#   neither overlong forms (besides a lone 0xC0/0xC1) nor surrogates nor the U+10FFFF limit: after
#   the piece " \xed" inside a JSON string it allows the 32 continuations 0xA0-0xBF (UTF-16
#   surrogates), which never make valid UTF-8. Those ids are listed per step as "invalid_utf8" and
#   the test expects lorad to refuse them. (SmolLM2 has no token for 0xC0, 0xC1 or 0xF5-0xFF, which
#   the decoder would also take as lead bytes.) A piece starting with a continuation byte is refused
#   unless a character is open.
# - A piece that is empty or starts with a NUL byte is always refused (pieces are read as C
#   strings), even where the grammar allows \x00: token 190 ("\x00") is refused in list items and
#   C comments.
# - Control tokens are matched as their text ("<|im_start|>" is 12 ASCII characters), so grammars
#   such as english.gbnf allow them; the universe leaves them out (lorad never constrains them).
#   The end-of-generation tokens (ids 0, 2 and 4 here: <|endoftext|>, <|im_end|>, <reponame>) are
#   instead allowed exactly when one of its parse stacks is empty (the root rule is complete). That
#   can hold after a piece that ends inside a character too (the stack that completed before the
#   character survives; e.g. root ::= " " | " " [\u0080-\uFFFF] after the piece " \xe2\x80"), where
#   a byte-level engine would not call the output a whole sentence; none of these cases reaches such
#   a state, and the script stops if one does.
# - Left-recursive grammars (root ::= root "a" | "a") are refused when the sampler is made.
import argparse
import base64
import ctypes
import hashlib
import json
import os
import sys
import tarfile
import tempfile
import urllib.request

import numpy as np

LLAMA_CPP_PYTHON = "0.3.36"
SDIST_URL = ("https://files.pythonhosted.org/packages/ec/e9/e7de2b0463ea3ffbf0ede6cb21b58c1258a8f6521aae45ca773a59fe7cf3/"
             "llama_cpp_python-0.3.36.tar.gz")
SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
LIST_LIMIT = 64  # ids (or disallowed ids) stored explicitly when a set (or its complement) is this small
NORMAL, BYTE = 1, 6  # GGUF token types that are text

# Per grammar: whole sentences, unfinished prefixes, then strings llama.cpp refuses partway.
CASES = {
    "json": [
        '{"name": "Ada", "age": 36}',
        '{"a": [1, 2.5, -3e4], "b": {"c": null, "d": true}}',
        '{"word": "h\u00e9llo \u65e5\u672c \U0001F600", "esc": "a\\"b\\\\c\\u00e9\\n"}',
        '{\n  "k": false,\n\t"l": []\n}',
        '{ }',
        '{"name": "Ad',
        '{"list": [1, 2, {"x": "y"',
        '{"a": tru e}',
        '{"n": 1e10}',  # json.gbnf's exponent is [0-9] [1-9]{0,15}: a 0 after the first digit is refused
        '{"tab": "a\tb"}',
        '{"k": "\ud55c\uad6d\uc5b4 \ud750\ub984"}',  # pieces cut after 0xED: llama.cpp allows surrogate continuations
        '[1, 2]',  # the root is an object
    ],
    "json_arr": [
        '[\n]',
        '[\n1,\n2]',
        '[\n{"a": [true, false]},\n"s\u00fc\u00df",\n1e10\n]',
        '[\n"abc',
        '[\n1,\n',
        '[1, 2]',
        '[\n1, 2]',
        '[\n1]\n',  # nothing may follow the root array
    ],
    "arithmetic": [
        '1+2=3\n',
        'x *(y +2)= z\n',
        'x *(y + 2)= z\n',  # a term cannot start with a space
        'a1=2\nb_2 =a1\n',
        '12*(3+',
        'a=b',
        '1 ++ 2=3\n',
        'A=1\n',
        '1+2=3\n4=+5\n',
    ],
    "list": [
        '- milk\n- eggs\n',
        '- caf\u00e9 au lait\n- \u65e5\u672c\u8336 \U0001F375\n',
        '- price \u00a35, 2020\u20102021\n',
        '- \u00a0x\n',
        '- bread\n- but',
        '- a\n-b\n',
        '* x\n',
        '- line\u2028sep\n',
        '- \n',
    ],
    "chess": [
        '1. e4 e5\n2. Nf3 Nc6\n',
        '1. d4 d5\n2. c4 dxc4\n3. e4 O-O-O\n',
        '1. e4 d5\n2. exd5 c6\n3. dxc6 a6\n4. cxb7 a5\n5. bxa8=Q+ Kd7\n',
        '1. e4 e5\n2. Qh5 Nc6\n3. Bc4 Nf6\n4. Qxf7#\n',  # every line needs two moves
        '1. e4 e5\n',
        '1. e4 e5\n2. Nf',
        '1. e9 e5\n',
        '1.e4 e5\n',
        '1. e4 e5\n0. d4 d5\n',
    ],
    "japanese": [
        '\u3053\u3093\u306b\u3061\u306f',
        '\u65e5\u672c\u8a9e\u3092\u52c9\u5f37\u3057\u3066\u3044\u307e\u3059\u3002',
        '\u30ab\u30bf\u30ab\u30ca \u3072\u3089\u304c\u306a\n\u6f22\u5b57',
        '\u3053\u3093\u306b\u3061\u306f ',
        '\u3053\u3093\u306b\u3061\u306f\u3001world',
        '\u65e5\u672c\u8a9e\uff01',
        '\uff76\uff80\uff76\uff85',
        '\ud55c\uad6d\uc5b4',
        '\u732b\U0001F600',
    ],
    "c": [
        '',
        'int main(){return 0;}',
        'int add(int a){return a+1;}float f(){x = add(2)*3;}',
        'int f(){while(i<10){i = i+1;}if(i==10){return i;}else{return 0;}// done\n}',
        'char c(){/* a * b */return 1;}',
        'int f(){/* x **/return 1;}',  # "**/" does not close the comment in c.gbnf
        'int main(){if(x<',
        'int main() {return 0;}',
        'void f(){}',
    ],
    "english": [
        'Hello, world!',
        "It's 5 o'clock.\nSee you at 6:30 (maybe).",
        'a-b [c] {d} ~e~ `f` \\g\\',
        'Hello ',
        'Hello  world',
        'caf\u00e9 au lait',
        'tab\t\tx',
    ],
}
GRAMMAR_ORDER = ["json", "json_arr", "arithmetic", "list", "chess", "japanese", "c", "english"]


def fnv1a64(ids):
    h = 0xcbf29ce484222325
    for i in ids:
        for b in int(i).to_bytes(4, "little"):
            h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def open_character(data: bytes) -> bytes:
    """The bytes of the character `data` ends inside of (a lead byte and too few continuations), or b""."""
    for back in range(1, min(4, len(data)) + 1):
        b = data[-back]
        if b & 0xC0 == 0x80:
            continue
        need = 2 if b & 0xE0 == 0xC0 else 3 if b & 0xF0 == 0xE0 else 4 if b & 0xF8 == 0xF0 else 1
        return data[-back:] if need > back else b""
    return b""


def utf8_prefix(data: bytes) -> bool:
    """True when `data` is valid UTF-8 or a beginning of it (strict: no overlong forms, surrogates or
    code points past U+10FFFF)."""
    try:
        data.decode("utf-8")
        return True
    except UnicodeDecodeError as e:
        return e.reason == "unexpected end of data" and e.end == len(data)


def grammars_from_sdist(tmp):
    path = os.path.join(tmp, "llama_cpp_python.tar.gz")
    print(f"downloading {SDIST_URL}", file=sys.stderr)
    urllib.request.urlretrieve(SDIST_URL, path)
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    if digest != SDIST_SHA256:
        sys.exit(f"error: {path} has sha256 {digest}, expected {SDIST_SHA256}")
    prefix = f"llama_cpp_python-{LLAMA_CPP_PYTHON}/vendor/llama.cpp/grammars/"
    with tarfile.open(path) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix) and m.name.endswith(".gbnf")]
        tar.extractall(tmp, members=members, filter="data")
    return os.path.join(tmp, prefix)


class Llama:
    """llama.cpp's vocabulary (vocab_only) and grammar sampler through llama-cpp-python's C API."""

    def __init__(self, model_path):
        import llama_cpp as L
        self.L = L
        # Silence llama.cpp's log; grammar parse errors are reported by init returning NULL.
        self._log = L.llama_log_callback(lambda level, text, user: None)
        L.llama_log_set(self._log, ctypes.c_void_p())
        L.llama_backend_init()
        params = L.llama_model_default_params()
        params.vocab_only = True
        self.model = L.llama_model_load_from_file(model_path.encode(), params)
        if not self.model:
            sys.exit(f"error: llama.cpp could not load {model_path}")
        self.vocab = L.llama_model_get_vocab(self.model)
        self.n_vocab = L.llama_vocab_n_tokens(self.vocab)
        self.eog = [i for i in range(self.n_vocab) if L.llama_vocab_is_eog(self.vocab, i)]
        self.eos = L.llama_vocab_eos(self.vocab)
        self.array = (L.llama_token_data * self.n_vocab)()
        dtype = np.dtype([("id", np.int32), ("logit", np.float32), ("p", np.float32)])
        assert ctypes.sizeof(L.llama_token_data) == dtype.itemsize
        self.view = np.frombuffer(self.array, dtype=dtype)
        self.all_ids = np.arange(self.n_vocab, dtype=np.int32)
        self.pieces = [self.piece(i) for i in range(self.n_vocab)]
        self.utf8_ok = np.array([utf8_prefix(p) for p in self.pieces])

    def tokenize(self, text: str):
        data = text.encode()
        buf = (self.L.llama_token * (len(data) + 8))()
        n = self.L.llama_tokenize(self.vocab, data, len(data), buf, len(buf), False, False)
        assert n >= 0, text
        return list(buf[:n])

    def piece(self, token) -> bytes:
        buf = ctypes.create_string_buffer(256)
        n = self.L.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, True)
        return buf.raw[:n]

    def sampler(self, grammar_text: str):
        s = self.L.llama_sampler_init_grammar(self.vocab, grammar_text.encode(), b"root")
        return s or None

    def allowed(self, sampler) -> np.ndarray:
        """A boolean per vocabulary id: not -inf after the grammar sampler's apply."""
        self.view["id"] = self.all_ids
        self.view["logit"] = 0
        self.view["p"] = 0
        arr = self.L.llama_token_data_array(self.array, self.n_vocab, -1, False)
        self.L.llama_sampler_apply(sampler, ctypes.byref(arr))
        assert arr.size == self.n_vocab and (self.view["id"] == self.all_ids).all(), "apply reordered the candidates"
        return np.isfinite(self.view["logit"])


def token_types(model_path):
    from gguf import GGUFReader
    field = GGUFReader(model_path).fields["tokenizer.ggml.token_type"]
    return np.array([int(field.parts[i][0]) for i in field.data])


class SetTable:
    """Allowed sets as the fixture stores them: size and checksum always; the ids when at most
    LIST_LIMIT are allowed, the disallowed ids when at most LIST_LIMIT of the universe are not, else
    the index of a bitmap (shared between the steps that have the same set)."""

    def __init__(self, universe_ids, n_vocab):
        self.universe_ids, self.n_vocab = universe_ids, n_vocab
        self.bitmaps, self.index = [], {}

    def encode(self, allowed_ids):
        entry = {"count": len(allowed_ids), "fnv1a64": f"{fnv1a64(allowed_ids):016x}"}
        if len(allowed_ids) <= LIST_LIMIT:
            entry["ids"] = [int(i) for i in allowed_ids]
        elif len(self.universe_ids) - len(allowed_ids) <= LIST_LIMIT:
            entry["disallowed"] = [int(i) for i in np.setdiff1d(self.universe_ids, allowed_ids)]
        else:
            bits = np.zeros(self.n_vocab, dtype=bool)
            bits[allowed_ids] = True
            packed = base64.b64encode(np.packbits(bits, bitorder="little").tobytes()).decode()
            if packed not in self.index:
                self.index[packed] = len(self.bitmaps)
                self.bitmaps.append(packed)
            entry["bitmap"] = self.index[packed]
        return entry


def walk(llama, grammar_text, tokens, universe, table, stats):
    """Steps before each token (and after the last unless one is refused), and the refused index."""
    sampler = llama.sampler(grammar_text)
    steps, rejected_at, out = [], None, b""
    try:
        for i in range(len(tokens) + 1):
            allowed = llama.allowed(sampler)
            eog = {bool(allowed[e]) for e in llama.eog}
            assert len(eog) == 1, "llama.cpp allows some end-of-generation tokens and not others"
            ids = np.flatnonzero(allowed & universe)
            step = table.encode(ids)
            step["eog"] = eog.pop()
            pending = open_character(out)
            if pending:
                # The output ends inside a character. llama.cpp can allow end of generation there (when
                # a parse completed before the open character); lorad should not, so the test would
                # need an exception. None of these cases reaches such a state: keep it that way.
                step["partial"] = True
                assert not step["eog"], f"end of generation allowed inside a character after {out!r}"
            # Tokens llama.cpp allows that can never become valid UTF-8 after the open character's
            # bytes (its decoder lets surrogates through): the test expects lorad to refuse them.
            if pending:
                never = [int(t) for t in ids if not utf8_prefix(pending + llama.pieces[t])]
            else:
                never = [int(t) for t in ids[~llama.utf8_ok[ids]]]
            if never:
                step["invalid_utf8"] = never
            stats["steps allowing never-valid UTF-8"] += bool(never)
            stats["control tokens allowed as text"] += int((allowed & ~universe).sum()) - len(llama.eog) * step["eog"]
            steps.append(step)
            if i == len(tokens):
                break
            if not allowed[tokens[i]]:
                rejected_at = i
                break
            llama.L.llama_sampler_accept(sampler, tokens[i])
            out += llama.pieces[tokens[i]]
    finally:
        llama.L.llama_sampler_free(sampler)
    return steps, rejected_at


def main():
    parser = argparse.ArgumentParser(description="Writes llama.cpp's GBNF token masks as a fixture for GBNFGoldenTests.")
    parser.add_argument("--grammars", help="llama.cpp's grammars/ directory (default: from the pinned sdist)")
    parser.add_argument("--model", default="models/SmolLM2-135M-Instruct.Q4_1.gguf")
    parser.add_argument("--out", default="Tests/GrammarTests/Fixtures/gbnf_llama_cpp.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        directory = args.grammars or grammars_from_sdist(tmp)
        texts, dropped = {}, []
        for name in GRAMMAR_ORDER:
            path = os.path.join(directory, name + ".gbnf")
            if os.path.exists(path):
                texts[name] = open(path, encoding="utf-8").read()
            else:
                dropped.append(f"{name} (no {name}.gbnf in this llama.cpp)")

    llama = Llama(args.model)
    types = token_types(args.model)
    if len(types) != llama.n_vocab:
        sys.exit(f"error: the GGUF has {len(types)} token types for {llama.n_vocab} tokens")
    universe = (types == NORMAL) | (types == BYTE)
    universe_ids = np.flatnonzero(universe)
    table = SetTable(universe_ids, llama.n_vocab)
    stats = {"steps allowing never-valid UTF-8": 0, "control tokens allowed as text": 0}

    grammars = []
    for name in GRAMMAR_ORDER:
        if name not in texts:
            continue
        probe = llama.sampler(texts[name])
        if probe is None:
            dropped.append(f"{name} (llama.cpp does not parse it)")
            continue
        llama.L.llama_sampler_free(probe)
        cases = []
        for text in CASES[name]:
            tokens = llama.tokenize(text)
            steps, rejected_at = walk(llama, texts[name], tokens, universe, table, stats)
            end_eog = steps[-1]["eog"] if rejected_at is None else False
            print(f"{name}: {text!r}: {len(tokens)} tokens {[llama.pieces[t] for t in tokens]}, rejected at {rejected_at}, "
                  f"eog at end {end_eog}, counts {[s['count'] for s in steps]}", file=sys.stderr)
            cases.append({
                "text": text,
                "tokens": [int(t) for t in tokens],
                "positions": list(range(len(steps))),
                "steps": steps,
                "rejected_at": rejected_at,
                "eog_allowed_at_end": end_eog,
            })
        grammars.append({"name": name, "text": texts[name], "cases": cases})

    fixture = {
        "generator": "scripts/goldens/gbnf_cases.py",
        "llama_cpp_python": LLAMA_CPP_PYTHON,
        "model": os.path.basename(args.model),
        "vocabulary": int(llama.n_vocab),
        "universe": int(len(universe_ids)),
        "excluded_ids": [int(i) for i in np.flatnonzero(~universe)],
        "eog_ids": [int(e) for e in llama.eog],
        "checksum": "FNV-1a 64 over the ascending allowed ids as little-endian UInt32s",
        "bitmap": "base64 of one bit per vocabulary id, least significant bit first",
        "dropped": dropped,
        "grammars": grammars,
        "bitmaps": table.bitmaps,
    }
    with open(args.out, "w", encoding="utf-8") as f:
        # One grammar per line (and one bitmap per line) keeps diffs of a regenerated fixture readable.
        f.write("{\n")
        keys = [k for k in fixture if k not in ("grammars", "bitmaps")]
        for k in keys:
            f.write(f"{json.dumps(k)}:{json.dumps(fixture[k], ensure_ascii=False)},\n")
        f.write('"grammars":[\n' + ",\n".join(json.dumps(g, ensure_ascii=False, separators=(",", ":")) for g in grammars) + "],\n")
        f.write('"bitmaps":[\n' + ",\n".join(json.dumps(b) for b in table.bitmaps) + "]\n}\n")
    print(f"wrote {args.out} ({os.path.getsize(args.out)} bytes, {len(table.bitmaps)} bitmaps); dropped: {dropped or 'none'}; "
          f"eos {llama.eos}, eog {llama.eog}; {stats}", file=sys.stderr)


if __name__ == "__main__":
    main()
