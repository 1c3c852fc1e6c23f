// [[tenants]] in the configuration, the glob patterns, and identifying a token.

import Crypto
import Testing
@testable import Server

struct TenantConfigTests {
    static let h1 = String(repeating: "ab", count: 32), h2 = String(repeating: "CD", count: 32)

    @Test func tenantsParse() throws {
        let c = try ServerConfig.parse(toml: """
            [[tenants]]
            name = "acme"
            token_sha256 = "\(Self.h1)"
            adapters = ["acme-*", "shared?"]
            base = true

            [[tenants]]
            name = "globex"
            token_sha256 = "\(Self.h2)"
            may_publish = true
            """, source: "<test>")
        #expect(c.tenants.map(\.name) == ["acme", "globex"])
        #expect(c.tenants[0].adapters == ["acme-*", "shared?"] && c.tenants[0].base && !c.tenants[0].mayPublish)
        #expect(c.tenants[1].tokenSHA256 == [UInt8](repeating: 0xCD, count: 32) && c.tenants[1].adapters.isEmpty && !c.tenants[1].base)
    }

    @Test(arguments: [
        ("[[tenants]]\nname = \"a\"", "tenants[0].token_sha256", "the key is missing"),
        ("[[tenants]]\ntoken_sha256 = \"\(h1)\"", "tenants[0].name", "the key is missing"),
        ("[[tenants]]\nname = \"a\"\ntoken_sha256 = \"abc\"", "tenants[0].token_sha256", "64 hex digits"),
        ("[[tenants]]\nname = \"A b\"\ntoken_sha256 = \"\(h1)\"", "tenants[0].name", "tenant name"),
        ("[[tenants]]\nname = \"a\"\ntoken_sha256 = \"\(h1)\"\nadapters = [\"../x\"]", "tenants[0].adapters", "patterns"),
        ("[[tenants]]\nname = \"a\"\ntoken_sha256 = \"\(h1)\"\nbase = 1", "tenants[0].base", "true or false"),
        ("[[tenants]]\nname = \"a\"\ntoken_sha256 = \"\(h1)\"\nmay_publsh = true", "tenants[0].may_publish", "may_publish"),
        ("[[tenants]]\nname = \"a\"\ntoken_sha256 = \"\(h1)\"\n[[tenants]]\nname = \"a\"\ntoken_sha256 = \"\(h2)\"", "tenants[1].name", "defined twice"),
        ("[[tenants]]\nname = \"a\"\ntoken_sha256 = \"\(h1)\"\n[[tenants]]\nname = \"b\"\ntoken_sha256 = \"\(h1.uppercased())\"", "tenants[1].token_sha256", "same token"),
        ("tenants = 3", "tenants", "array of tables"),
        ("[tennants]\nx = 1", "tennants", "tenants"),
    ])
    func badTenantsAreNamed(_ toml: String, _ key: String, _ words: String) {
        do {
            _ = try ServerConfig.parse(toml: toml, source: "<test>")
            Issue.record("accepted: \(toml)")
        } catch {
            #expect(error.description.contains(key) && error.description.contains(words), "\(error.description)")
        }
    }

    @Test(arguments: [
        ("acme-*", "acme-support", true), ("acme-*", "acme-", true), ("acme-*", "acme", false), ("acme-*", "xacme-a", false),
        ("*", "anything", true), ("a?c", "abc", true), ("a?c", "ac", false), ("*-v?", "x-v2", true), ("a*b*c", "axxbyyc", true),
        ("a*b*c", "axxbyy", false), ("alpha", "alpha", true), ("alpha", "alpha2", false),
    ])
    func globs(_ pattern: String, _ name: String, _ matches: Bool) {
        #expect(TenantConfig.glob(pattern, matches: name) == matches)
    }

    @Test func identifyingATokenChecksEveryHash() {
        let hash = { (t: String) in Array(SHA256.hash(data: Array(t.utf8))) }
        let a = TenantConfig(name: "a", tokenSHA256: hash("ta"), adapters: ["a*"])
        let b = TenantConfig(name: "b", tokenSHA256: hash("tb"), adapters: ["b*"])
        let d = TenantDirectory(tenants: [a, b], adminToken: hash("admin"))
        #expect(d.identify(token: "ta") == .tenant(a))
        #expect(d.identify(token: "tb") == .tenant(b))
        #expect(d.identify(token: "admin") == .admin)
        #expect(d.identify(token: "tc") == .unknown && d.identify(token: "") == .unknown)
        #expect(TenantDirectory.bearer("Bearer  xyz ") == "xyz" && TenantDirectory.bearer("bearer xyz") == "xyz")
        #expect(TenantDirectory.bearer("Basic eHl6") == "" && TenantDirectory.bearer(nil) == nil)
    }
}
