// Fuzzing the configuration readers: mutated copies of a full configuration, random byte-size and
// address strings, and pathological documents. Nothing may trap; whatever parses must satisfy the
// documented ranges, and every refusal must name what is wrong. Seeded, so a failure reproduces.

import Foundation
import Testing
@testable import Server
import Kernels

/// Picking mutations with Kernels' seeded SplitMix64.
extension SplitMix64 {
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
}

@Suite struct ConfigFuzzTests {
    static let seedDocument = """
        [model]
        path = "/var/lib/lorad/models/m.gguf"
        served_model_name = "base"
        threads = 4
        context = 4096
        numerics = "f32"
        [adapters]
        dir = "/var/lib/lorad/adapters"
        [server]
        socket = "/run/lorad/lorad.sock"
        socket_mode = "0660"
        tcp = "127.0.0.1:8080"
        max_body_bytes = "8MiB"
        idle_timeout_seconds = 60
        drain_timeout_seconds = 2.5
        [engine]
        max_sequences = 32
        kv_budget = "1GiB"
        queue_limit = 256
        prefix_cache = true
        [log]
        level = "info"
        """

    static let alphabet = Array("[]\"'=#\n.,{}-_: 0123456789abcdefghijklmnopqrstuvwxyzKMGiB\\\u{0}é")
    static let tokens = ["[", "[[", "]", "}", "{", ", ", "= ", "\n[", "1979-05-27", "1979-05-27T", "07:32", " 1,", "T:",
                         "\"\"\"", "'''", "#", "0x", "1e", "inf", "\t"].map(Array.init)

    static func mutate(_ text: String, _ r: inout SplitMix64) -> String {
        var chars = Array(text)
        for _ in 0..<(1 + r.below(4)) {
            switch r.below(5) {
            case 0 where !chars.isEmpty:  // delete a short run
                let at = r.below(chars.count)
                chars.removeSubrange(at..<min(chars.count, at + 1 + r.below(6)))
            case 1:  // insert random characters, or a token toml++ treats specially
                let at = r.below(chars.count + 1)
                if r.below(2) == 0 {
                    chars.insert(contentsOf: (0..<(1 + r.below(4))).map { _ in r.pick(alphabet) }, at: at)
                } else {
                    chars.insert(contentsOf: r.pick(tokens), at: at)
                }
            case 2 where !chars.isEmpty:  // replace one character
                chars[r.below(chars.count)] = r.pick(alphabet)
            case 3:  // duplicate a line elsewhere
                var lines = String(chars).split(separator: "\n", omittingEmptySubsequences: false)
                let line = lines[r.below(lines.count)]
                lines.insert(line, at: r.below(lines.count + 1))
                chars = Array(lines.joined(separator: "\n"))
            default:  // swap a value for another key's
                let values = ["0", "-1", "1e9", "\"\"", "true", "[1, 2]", "{a = 1}", "\"99999999999TiB\"",
                              "9223372036854775807", "1979-05-27T07:32:00Z", "\"[::1]:0\"", "\"0777\"", "nan", "inf"]
                var lines = String(chars).split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
                let i = r.below(lines.count)
                if let eq = lines[i].firstIndex(of: "=") {
                    lines[i] = String(lines[i][...eq]) + " " + r.pick(values)
                }
                chars = Array(lines.joined(separator: "\n"))
            }
        }
        return String(chars)
    }

    /// What every successfully parsed configuration must satisfy.
    static func checkInvariants(_ c: ServerConfig) {
        #expect(!c.model.path.isEmpty && !c.adapters.dir.isEmpty && !c.server.socket.isEmpty)
        #expect((0...1024).contains(c.model.threads))
        #expect((16...(1 << 20)).contains(c.model.context))
        #expect(c.server.socketMode <= 0o777)
        #expect(c.server.socket.utf8.count <= 107)
        #expect((1...1024).contains(c.engine.maxSequences))
        #expect(((1 << 20)...(1 << 40)).contains(c.engine.kvBudgetBytes))
        #expect(c.server.idleTimeout >= .seconds(1) && c.server.drainTimeout >= .zero)
        if let tcp = c.server.tcp { #expect(tcp.isLoopback || c.server.tcpAllowRemote) }
        #expect(c.validationProblems().isEmpty)
    }

    /// LORAD_FUZZ_SEED picks another seed to explore further; a run that aborts inside toml++ means
    /// TOMLPrecheck misses a shape.
    @Test func mutatedDocumentsNeverTrap() {
        let seed = ProcessInfo.processInfo.environment["LORAD_FUZZ_SEED"].flatMap { UInt64($0) } ?? 0x10AD
        var r = SplitMix64(seed: seed)
        var accepted = 0, refused = 0
        for _ in 0..<1500 {
            let text = Self.mutate(Self.seedDocument, &r)
            do {
                let c = try ServerConfig.parse(toml: text, source: "fuzz")
                Self.checkInvariants(c)
                accepted += 1
            } catch {
                #expect(!error.problems.isEmpty)
                for p in error.problems {
                    #expect(!p.description.isEmpty)
                    if case .badValue(let key, _, _) = p { #expect(key.contains(".") || ConfigKey.sections.contains(key)) }
                }
                refused += 1
            }
        }
        // Both outcomes occur, or the mutations are not exercising anything.
        #expect(accepted > 50 && refused > 50, "accepted \(accepted), refused \(refused)")
    }

    @Test func pathologicalDocuments() {
        let deepTables = (0..<2000).map { "t\($0)" }.joined(separator: ".")
        let documents = [
            "[\(deepTables)]\nx = 1",
            "[server]\n" + String(repeating: "a", count: 100_000) + " = 1",
            "[engine]\nmax_sequences = " + String(repeating: "9", count: 400),
            "[server]\nsocket = \"" + String(repeating: "\\u00e9", count: 10_000) + "\"",
            "a = " + String(repeating: "[", count: 5000) + String(repeating: "]", count: 5000),
            String(repeating: "[model]\n", count: 3),
            "\u{FEFF}[log]\nlevel = \"info\"",
            "[log]\r\nlevel = \"debug\"\r\n",
        ]
        for text in documents {
            do {
                Self.checkInvariants(try ServerConfig.parse(toml: text, source: "pathological"))
            } catch {
                #expect(!error.description.isEmpty)
            }
        }
    }

    @Test func byteSizesRoundTrip() {
        var r = SplitMix64(seed: 42)
        let pieces = ["0", "1", "7", "10", "512", "1024", "99999999999", " ", "B", "KiB", "MiB", "GiB", "TiB", "k", ".", "-"]
        for _ in 0..<5000 {
            let text = (0..<(1 + r.below(4))).map { _ in r.pick(pieces) }.joined()
            if let bytes = ByteSize.parse(text) {
                #expect(bytes >= 0)
                #expect(ByteSize.parse(ByteSize.format(bytes)) == bytes, "\(text)")
            }
        }
    }

    @Test func tcpAddressesRoundTrip() {
        var r = SplitMix64(seed: 7)
        let pieces = ["127.0.0.1", "0.0.0.0", "::1", "::", "[", "]", ":", "8080", "0", "65535", "65536", "localhost",
                      "fe80::1", "1.2.3", "[::ffff:127.0.0.1]", "%eth0", " ", "a"]
        for _ in 0..<5000 {
            let text = (0..<(1 + r.below(4))).map { _ in r.pick(pieces) }.joined()
            if let address = TCPAddress.parse(text) {
                #expect(TCPAddress.parse(address.description) == address, "\(text)")
            }
        }
    }
}
