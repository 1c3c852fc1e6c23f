// config/lorad.toml against the code: the shipped file parses to exactly the built-in defaults, it
// documents every key in its own section, and with every `# key = value` line uncommented it
// still parses and still equals the defaults, except the optional keys, whose examples are shown.
// So the defaults written in the file are the real ones.

import Foundation
import Testing
@testable import Server

@Suite struct ConfigExampleTests {
    let path = opsRepositoryRoot + "/config/lorad.toml"

    func exampleText() throws -> String {
        try String(contentsOfFile: path, encoding: .utf8)
    }

    @Test func shippedExampleIsTheDefaults() throws {
        #expect(try ServerConfig.load(path: path) == .defaults)
    }

    @Test func uncommentedExampleShowsTheDefaults() throws {
        var lines: [String] = []
        var uncommented = 0
        for line in try exampleText().split(separator: "\n", omittingEmptySubsequences: false) {
            if line.wholeMatch(of: /# [a-z0-9_]+ = .+/) != nil {
                lines.append(String(line.dropFirst(2)))
                uncommented += 1
            } else {
                lines.append(String(line))
            }
        }
        #expect(uncommented == ConfigKey.all.count)
        let parsed = try ServerConfig.parse(toml: lines.joined(separator: "\n"), source: "uncommented example")
        // Optional keys have no default value to show; the file shows an example instead.
        var expected = ServerConfig.defaults
        expected.model.chatTemplate = "chatml"
        expected.server.socketGroup = "lorad"
        expected.server.tcp = TCPAddress.parse("127.0.0.1:8080")
        expected.admin.uids = [0]
        expected.admin.tokenSHA256 = TenantConfig.parseHash("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")
        #expect(parsed == expected)
    }

    @Test func everyKeyIsDocumentedInItsSection() throws {
        var section = ""
        var documented: [String] = []
        for line in try exampleText().split(separator: "\n") {
            if let m = line.wholeMatch(of: /\[([a-z_]+)\]/) {
                section = String(m.1)
            } else if let m = line.wholeMatch(of: /# ([a-z0-9_]+) = .+/) {
                documented.append("\(section).\(m.1)")
            }
        }
        #expect(documented == ConfigKey.all.map(\.path))
        #expect(ConfigKey.sections == ConfigKey.all.reduce(into: [String]()) {
            if $0.last != $1.section { $0.append($1.section) }
        })
    }
}
