// Chat templates against jinja2 and llama.cpp (Fixtures/chat_templates.json,
// scripts/goldens/chat_templates.py), and SmolLM2's template read from the real model.
//
// Tolerance: none. Every render must equal jinja2's text exactly (transformers' environment and
// variables); renders the template refuses (raise_exception) must throw .raised with jinja2's
// message, and other jinja2 errors must throw. Token ids are not checked here (the tokenizer tests
// do that); the fixture stores them for that purpose.

import Foundation
import JSON
import ModelFormats
import Testing
@testable import ChatTemplate

@Suite struct ChatTemplateTests {
    struct Render: CustomTestStringConvertible, Sendable {
        let template: String
        let conversation: String
        let messages: [JSONValue]
        let addGenerationPrompt: Bool
        let extra: [String: JSONValue]
        let text: String?
        let error: String?
        var testDescription: String { "\(template) / \(conversation) / gen=\(addGenerationPrompt)" }
    }

    struct Template: Sendable {
        let name: String
        let source: String
        let bos: String
        let eos: String
    }

    struct Fixture: Sendable {
        var templates: [String: Template] = [:]
        var renders: [Render] = []
        var rejected: [(name: String, template: String, construct: String)] = []
    }

    static let fixture: Fixture = {
        var f = Fixture()
        guard let json = try? loadJinjaFixture("chat_templates") else { return f }
        for t in json["templates"]?.arrayValue ?? [] {
            let template = Template(name: t["name"]?.stringValue ?? "", source: t["source"]?.stringValue ?? "",
                                    bos: t["bos_token"]?.stringValue ?? "", eos: t["eos_token"]?.stringValue ?? "")
            f.templates[template.name] = template
        }
        for r in json["renders"]?.arrayValue ?? [] {
            var extra: [String: JSONValue] = [:]
            for (k, v) in r["extra"]?.objectMembers ?? [] { extra[k] = v }
            f.renders.append(Render(template: r["template"]?.stringValue ?? "",
                                    conversation: r["conversation"]?.stringValue ?? "",
                                    messages: r["messages"]?.arrayValue ?? [],
                                    addGenerationPrompt: r["add_generation_prompt"]?.boolValue ?? false,
                                    extra: extra, text: r["text"]?.stringValue, error: r["error"]?.stringValue))
        }
        for r in json["rejected"]?.arrayValue ?? [] {
            f.rejected.append((r["name"]?.stringValue ?? "", r["template"]?.stringValue ?? "",
                               r["lorad_rejects"]?.stringValue ?? ""))
        }
        return f
    }()

    @Test func fixtureLoads() throws {
        _ = try loadJinjaFixture("chat_templates")
        #expect(Set(Self.fixture.templates.keys) == ["smollm2", "chatml", "llama3", "gemma", "tools-test"])
        #expect(Self.fixture.renders.count >= 100)
        #expect(Self.fixture.renders.contains { $0.error?.hasPrefix("TemplateError: ") == true })
        #expect(!Self.fixture.rejected.isEmpty)
    }

    @Test(arguments: fixture.renders)
    func rendersLikeJinja2(_ r: Render) throws {
        let t = try #require(Self.fixture.templates[r.template])
        let template = try ChatTemplate(source: t.source)
        let render = {
            try template.render(messageValues: r.messages, addGenerationPrompt: r.addGenerationPrompt,
                                bosToken: t.bos, eosToken: t.eos, extra: r.extra)
        }
        if let jinjaError = r.error {
            let error = chatTemplateError("jinja2 raised \(jinjaError)") { _ = try render() }
            if jinjaError.hasPrefix("TemplateError: ") {
                guard case .raised(let message, _)? = error else {
                    Issue.record("expected .raised, got \(String(describing: error))")
                    return
                }
                #expect(message == String(jinjaError.dropFirst("TemplateError: ".count)))
            }
            return
        }
        let expected = try #require(r.text)
        let rendered = try render()
        #expect(rendered.unicodeScalars.elementsEqual(expected.unicodeScalars),
                "\n lorad: \(rendered.debugDescription)\njinja2: \(expected.debugDescription)")
    }

    /// ChatMessage is the plain-text path of the same render.
    @Test func chatMessagesRenderLikeTheirJSONForm() throws {
        let t = try #require(Self.fixture.templates["smollm2"])
        let template = try ChatTemplate(source: t.source)
        for r in Self.fixture.renders where r.template == "smollm2" && r.text != nil {
            let messages = r.messages.map {
                ChatMessage(role: $0["role"]?.stringValue ?? "", content: $0["content"]?.stringValue ?? "")
            }
            let rendered = try template.render(messages: messages, addGenerationPrompt: r.addGenerationPrompt,
                                               bosToken: t.bos, eosToken: t.eos)
            #expect(rendered == r.text, "\(r.testDescription)")
        }
    }

    @Test func builtinsAreThePublishedTemplates() throws {
        #expect(ChatTemplate.builtinNames == ["chatml", "llama3", "gemma"])
        for name in ChatTemplate.builtinNames {
            let published = try #require(Self.fixture.templates[name], "no fixture template \(name)")
            #expect(ChatTemplate.builtinSource(named: name) == published.source, "\(name)")
            #expect(try ChatTemplate.builtin(named: name)?.source == published.source)
        }
        #expect(ChatTemplate.builtinSource(named: "nope") == nil)
        #expect(try ChatTemplate.builtin(named: "nope") == nil)
    }

    @Test func rejectedTemplatesFailWithTheConstruct() throws {
        for r in Self.fixture.rejected {
            let error = chatTemplateError("\(r.name)") {
                _ = try ChatTemplate(source: r.template).render(messages: [ChatMessage(role: "user", content: "x")],
                                                                addGenerationPrompt: true)
            }
            guard case .unsupported(let construct, let at)? = error else {
                Issue.record("\(r.name): expected .unsupported, got \(String(describing: error))")
                continue
            }
            #expect(construct.contains(r.construct), "\(r.name): \(construct)")
            #expect(at.line >= 1 && at.column >= 1)
            #expect(error!.description.contains("--chat-template"), "the message suggests the fix")
        }
    }

    /// FORMATS.md §6.4: SmolLM2's template, read from the real GGUF, renders [{"user": "Hi"}] with the
    /// generation prompt to exactly this text (quoted from FORMATS.md, verified there with llama.cpp).
    @Test func smolLM2TemplateFromTheModelRendersTheFormatsExample() throws {
        let file = try GGUFFile(path: try realModelPath())
        let template = try #require(try ChatTemplate.fromModel(metadata: file.metadata),
                                    "the model has no tokenizer.chat_template")
        let rendered = try template.render(messages: [ChatMessage(role: "user", content: "Hi")],
                                           addGenerationPrompt: true, bosToken: "<|im_start|>", eosToken: "<|im_end|>")
        #expect(rendered == "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
                + "<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
        // The template in the fixture is the one in the model.
        #expect(template.source == Self.fixture.templates["smollm2"]?.source)
        // A system message replaces the default one; no generation prompt leaves the turn closed.
        let withSystem = try template.render(messages: [ChatMessage(role: "system", content: "Be terse."),
                                                        ChatMessage(role: "user", content: "Hi")],
                                             addGenerationPrompt: false)
        #expect(withSystem == "<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n")
    }

    @Test func metadataWithoutTemplateOrWithWrongType() throws {
        #expect(try ChatTemplate.fromModel(metadata: [:]) == nil)
        let error = chatTemplateError("a u32 template") {
            _ = try ChatTemplate.fromModel(metadata: ["tokenizer.chat_template": .uint32(3)])
        }
        guard case .unknownTemplate(_, let reason)? = error else {
            Issue.record("expected .unknownTemplate, got \(String(describing: error))")
            return
        }
        #expect(reason.contains("expected a string"))
    }

    @Test func loadPicksBuiltinsThenFiles() throws {
        let chatml = try ChatTemplate.load(nameOrPath: "chatml")
        #expect(chatml.source == ChatTemplate.builtinSource(named: "chatml"))

        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("lorad-chat-template-\(getpid()).jinja").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let source = "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}"
        try source.write(toFile: path, atomically: true, encoding: .utf8)
        let fromFile = try ChatTemplate.load(nameOrPath: path)
        #expect(fromFile.source == source)
        #expect(try fromFile.render(messages: [ChatMessage(role: "user", content: "a"),
                                               ChatMessage(role: "assistant", content: "b")],
                                    addGenerationPrompt: false) == "[user] a\n[assistant] b\n")

        let missing = chatTemplateError("missing file") { _ = try ChatTemplate.load(nameOrPath: path + ".missing") }
        guard case .unknownTemplate(let name, let reason)? = missing else {
            Issue.record("expected .unknownTemplate, got \(String(describing: missing))")
            return
        }
        #expect(name == path + ".missing")
        #expect(reason.contains("No such file"))
        #expect(missing!.description.contains("chatml, llama3, gemma"))

        try Data([0x7B, 0x7B, 0xFF, 0x7D, 0x7D]).write(to: URL(fileURLWithPath: path))
        let invalid = chatTemplateError("invalid UTF-8") { _ = try ChatTemplate.load(nameOrPath: path) }
        #expect(invalid?.message.contains("UTF-8") == true)
    }

    /// What the defaults give the template: tools and documents are none (not undefined), as in
    /// transformers, and extra variables override them.
    @Test func defaultVariables() throws {
        let probe = try ChatTemplate(source: "{{ tools is none }} {{ documents is none }} {{ tools is defined }} "
                                     + "{{ add_generation_prompt }} [{{ bos_token }}] [{{ eos_token }}] {{ flag | default('-') }}")
        #expect(try probe.render(messages: [], addGenerationPrompt: true, bosToken: "<s>", eosToken: "</s>")
                == "True True True True [<s>] [</s>] -")
        #expect(try probe.render(messages: [], addGenerationPrompt: false,
                                 extra: ["tools": .array([]), "flag": .bool(true)])
                == "False True True False [] [] True")
    }
}
