// Rendered chat prompts tokenize to llama.cpp's ids (Fixtures/chat_templates.json, written by
// scripts/goldens/chat_templates.py: jinja2's render, then llama.cpp's tokenizer with special
// tokens parsed). Together with ChatTemplateTests (our render == jinja2's), this checks the whole
// path from messages to the ids the model sees. Exact, no tolerance.

import Foundation
import Testing
@testable import ChatTemplate
@testable import Tokenizer

@Suite struct ChatPromptIdsTests {
    @Test func renderedPromptsTokenizeAsLlamaCpp() throws {
        let url = try #require(Bundle.module.url(forResource: "chat_templates", withExtension: "json", subdirectory: "Fixtures"))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        let renders = try #require(json["renders"] as? [[String: Any]])
        let tokenizer = try RealModel.tokenizer()
        var checked = 0
        for r in renders {
            guard let ids = r["ids"] as? [Int], let text = r["text"] as? String else { continue }
            #expect(tokenizer.encode(text, parseSpecial: true, addBOS: false) == ids.map(Int32.init),
                    "\(r["template"] ?? "") / \(r["conversation"] ?? "")")
            checked += 1
        }
        #expect(checked >= 40)
    }
}
