// `lorad tokenize`, `lorad generate` and `lorad chat` as a user runs them, on the real model.

import Foundation
import Testing

@Suite struct TokenizeCLITests {
    @Test func idsJsonAndPieces() throws {
        let model = try CLI.model()
        let plain = try CLI.run(["tokenize", "--model", model, "Hello world! 123"])
        #expect(plain.status == 0, "\(plain.stderr)")
        // FORMATS.md §6.2, verified against llama.cpp.
        #expect(plain.stdout == "19556 905 17 216 33 34 35\n")
        let json = try CLI.run(["tokenize", "--model", model, "--json", "Hello world! 123"])
        #expect(json.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[19556,905,17,216,33,34,35]")
        let pieces = try CLI.run(["tokenize", "--model", model, "--pieces", "Hello world"])
        #expect(pieces.stdout.split(separator: "\n").first.map(String.init) == "19556\tHello")
    }

    @Test func specialTokensOnByDefault() throws {
        let model = try CLI.model()
        let on = try CLI.run(["tokenize", "--model", model, "<|im_start|>user"])
        #expect(on.stdout.hasPrefix("1 "))
        let off = try CLI.run(["tokenize", "--model", model, "--no-special", "<|im_start|>user"])
        #expect(!off.stdout.hasPrefix("1 "))
    }
}

@Suite struct GenerateCLITests {
    /// The issue's acceptance check: a sensible greedy answer on the default model.
    @Test func capitalOfFrance() throws {
        let r = try CLI.run(["generate", "--model", try CLI.model(), "--temperature", "0", "What is the capital of France?"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("Paris"))
        #expect(r.stdout.hasSuffix("\n") && !r.stdout.hasSuffix("\n\n"))
        #expect(!r.stdout.contains("<|im_end|>"))
    }

    @Test func rawPromptStopAndMaxTokens() throws {
        let model = try CLI.model()
        let raw = try CLI.run(["generate", "--model", model, "--temperature", "0", "--raw", "--max-tokens", "5", "-v",
                               "The quick brown fox"])
        #expect(raw.status == 0, "\(raw.stderr)")
        #expect(raw.stderr.contains("generated 5 tokens") && raw.stderr.contains("finish: length"))
        // The same greedy run cut by a stop string: the output ends before it.
        let full = try CLI.run(["generate", "--model", model, "--temperature", "0", "--raw", "--max-tokens", "12",
                                "The quick brown fox"]).stdout
        let words = full.split(separator: " ")
        #expect(words.count >= 3)
        let stopWord = String(words[2])
        let cut = try CLI.run(["generate", "--model", model, "--temperature", "0", "--raw", "--max-tokens", "12",
                               "--stop", stopWord, "The quick brown fox"])
        #expect(cut.stdout == String(full[..<full.range(of: stopWord)!.lowerBound]) + "\n")
    }

    @Test func seedsReproduce() throws {
        let model = try CLI.model()
        let args = ["generate", "--model", model, "--max-tokens", "16", "--temperature", "1.0", "--seed", "7", "Tell me a story."]
        let a = try CLI.run(args), b = try CLI.run(args)
        #expect(a.status == 0 && a.stdout == b.stdout)
    }

    @Test func badArgumentsAndModels() throws {
        let model = try CLI.model()
        let temp = try CLI.run(["generate", "--model", model, "--temperature", "-1", "hi"])
        #expect(temp.status == 64 && temp.stderr.contains("temperature"))
        let topP = try CLI.run(["generate", "--model", model, "--top-p", "1.5", "hi"])
        #expect(topP.status == 64 && topP.stderr.contains("top_p"))
        let missing = try CLI.run(["generate", "--model", "/nonexistent.gguf", "hi"])
        #expect(missing.status == 1 && missing.stderr.contains("/nonexistent.gguf"))
        let tooLong = try CLI.run(["generate", "--model", model, "--context", "16", "--raw", String(repeating: "word ", count: 40)])
        #expect(tooLong.status == 1 && tooLong.stderr.contains("context"))
        let template = try CLI.run(["generate", "--model", model, "--chat-template", "/nonexistent.jinja", "hi"])
        #expect(template.status == 1)
    }
}

@Suite struct ChatCLITests {
    /// Two turns on standard input, then end of input (Ctrl-D): the daemon-free chat keeps the
    /// conversation and exits cleanly.
    @Test func twoTurnsThenEOF() throws {
        let r = try CLI.run(["chat", "--model", try CLI.model(), "--temperature", "0", "--max-tokens", "24"],
                            stdin: "What is the capital of France?\nAnd of Italy?\n")
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("Paris"))
        #expect(r.stdout.components(separatedBy: "> ").count == 4, "three prompts: two turns and the final EOF: \(r.stdout)")
    }
}

@Suite struct AdapterCLITests {
    /// Fixtures written by scripts/goldens/lora_*.py, beside the Llama tests.
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("LlamaTests/Fixtures")

    @Test func adapterChangesOutputAndScaleZeroDoesNot() throws {
        let model = try CLI.model()
        let peft = Self.fixtures.appendingPathComponent("lora_smollm2_peft").path
        let args = ["generate", "--model", model, "--temperature", "0", "--max-tokens", "24", "Write a haiku about the sea."]
        let base = try CLI.run(args)
        let adapted = try CLI.run(args + ["--adapter", peft])
        let zero = try CLI.run(args + ["--adapter", peft + ":0"])
        #expect(base.status == 0 && adapted.status == 0 && zero.status == 0, "\(adapted.stderr)")
        #expect(adapted.stdout != base.stdout)
        #expect(zero.stdout == base.stdout)
    }

    @Test func badAdapterFailsWithTheValidationError() throws {
        let model = try CLI.model()
        let tiny = Self.fixtures.appendingPathComponent("lora_tiny_plain").path
        let r = try CLI.run(["generate", "--model", model, "--adapter", tiny, "hi"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("wrong base model"))
        let missing = try CLI.run(["generate", "--model", model, "--adapter", "/nonexistent", "hi"])
        #expect(missing.status == 1 && missing.stderr.contains("not a LoRA adapter"))
    }
}

@Suite struct GenerateRegexCLITests {
    /// `--regex`: the printed answer is a whole match and the run ends at end of generation; a pattern
    /// lorad cannot compile is an error naming the option, the construct and its offset, exit 1.
    @Test func regexConstrainsTheOutput() throws {
        let model = try CLI.model()
        for (pattern, extra) in [(#"\d{3}-\d{4}"#, ["--temperature", "0"]),
                                 ("(yes|no|maybe)", ["--temperature", "1", "--seed", "5"])] {
            let r = try CLI.run(["generate", "--model", model, "--max-tokens", "16", "-v", "--regex", pattern] + extra
                                + ["Answer me: what is your phone number, and is it correct?"])
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stderr.contains("finish: stop"), "\(r.stderr)")
            let out = String(r.stdout.dropLast())   // the newline generate adds
            let re = try NSRegularExpression(pattern: "^(?:" + pattern + ")$")
            #expect(re.firstMatch(in: out, range: NSRange(out.startIndex..., in: out)) != nil, "\(pattern): \(out.debugDescription)")
        }
        let bad = try CLI.run(["generate", "--model", model, "--regex", "a(?=b)", "hi"])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("--regex") && bad.stderr.contains("lookahead") && bad.stderr.contains("offset 1"), "\(bad.stderr)")
    }

    /// `--json-schema FILE`: the printed answer is JSON with the schema's enum values, and the run
    /// ends at end of generation; a schema keyword lorad cannot follow is an error naming it and its
    /// pointer, exit 1.
    @Test func jsonSchemaConstrainsTheOutput() throws {
        let model = try CLI.model()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lorad-cli-schema-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let schema = dir.appendingPathComponent("triage.json")
        try #"{"type": "object", "required": ["priority", "escalate"], "properties": {"priority": {"enum": ["low", "high"]}, "escalate": {"type": "boolean"}}}"#
            .write(to: schema, atomically: true, encoding: .utf8)
        let r = try CLI.run(["generate", "--model", model, "--max-tokens", "32", "-v", "--temperature", "0",
                             "--json-schema", schema.path, "My parcel is lost. Triage this."])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("finish: stop"), "\(r.stderr)")
        let out = String(r.stdout.dropLast())
        let re = try NSRegularExpression(pattern: #"^\{"priority":"(low|high)","escalate":(true|false)\}$"#)
        #expect(re.firstMatch(in: out, range: NSRange(out.startIndex..., in: out)) != nil, "\(out.debugDescription)")
        let bad = dir.appendingPathComponent("bad.json")
        try #"{"type": "object", "properties": {"n": {"type": "integer", "multipleOf": 2}}}"#.write(to: bad, atomically: true, encoding: .utf8)
        let refused = try CLI.run(["generate", "--model", model, "--json-schema", bad.path, "hi"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("--json-schema") && refused.stderr.contains("/properties/n/multipleOf"), "\(refused.stderr)")
    }

    /// `--grammar FILE`: the printed answer is a sentence of the GBNF grammar (nested parentheses,
    /// which no regex can check) and the run ends at end of generation; a grammar lorad cannot follow
    /// is an error saying where, exit 1; two constraints at once are refused.
    @Test func grammarConstrainsTheOutput() throws {
        let model = try CLI.model()
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lorad-cli-grammar-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let grammar = dir.appendingPathComponent("sum.gbnf")
        try "root ::= expr\nexpr ::= term (\"+\" term){0,3}\nterm ::= [1-9] | \"(\" expr \")\"\n".write(to: grammar, atomically: true, encoding: .utf8)
        let r = try CLI.run(["generate", "--model", model, "--max-tokens", "24", "-v", "--temperature", "0",
                             "--grammar", grammar.path, "Write a sum of small numbers with parentheses."])
        #expect(r.status == 0, "\(r.stderr)")
        let out = String(r.stdout.dropLast())
        // A sentence: digits and pluses, parentheses balanced, never an empty pair; cut short by
        // --max-tokens only if the parentheses are still open.
        var depth = 0
        for c in out {
            if c == "(" { depth += 1 } else if c == ")" { depth -= 1 }
            #expect(depth >= 0 && "123456789+()".contains(c), "\(out.debugDescription)")
        }
        #expect(!out.isEmpty && !out.contains("()") && !out.contains("++"), "\(out.debugDescription)")
        if r.stderr.contains("finish: stop") { #expect(depth == 0, "\(out.debugDescription)") }
        let bad = dir.appendingPathComponent("bad.gbnf")
        try "root ::= item\nitem ::= [a-z]+\nitem ::= \"x\"\n".write(to: bad, atomically: true, encoding: .utf8)
        let refused = try CLI.run(["generate", "--model", model, "--grammar", bad.path, "hi"])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("--grammar") && refused.stderr.contains("defined again at line 3"), "\(refused.stderr)")
        let both = try CLI.run(["generate", "--model", model, "--grammar", grammar.path, "--regex", "a", "hi"])
        #expect(both.status == 1 && both.stderr.contains("give one of them"), "\(both.stderr)")
    }
}
