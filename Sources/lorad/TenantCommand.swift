// `lorad tenant add NAME`: a fresh random bearer token, printed once, and the `[[tenants]]` entry
// (with the token's SHA-256, never the token) to paste into the daemon's configuration. `--admin`
// prints an admin token and its `[admin] token_sha256` line instead. Nothing is written: the
// configuration file is the operator's, and a SIGHUP applies it.

import ArgumentParser
import Crypto
import Foundation
import Registry
import Server

struct Tenant: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tenant",
        abstract: "Tenants of a daemon: tokens and their configuration entries.",
        subcommands: [TenantAdd.self])
}

struct TenantAdd: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Print a new tenant's token (once) and the [[tenants]] entry for lorad.toml.",
        discussion: """
            The token is 32 random bytes from the system's generator; only its SHA-256 goes into the \
            configuration, so a leaked configuration does not leak tokens. Give the token to the \
            tenant; it is not shown again.
            """)

    @Argument(help: ArgumentHelp("The tenant's name, \(AdapterName.rule).", valueName: "name"))
    var name: String
    @Option(name: .customLong("adapters"), parsing: .upToNextOption,
            help: ArgumentHelp("Adapter name patterns it may use (* and ? wildcards), e.g. 'acme-*'.", valueName: "pattern"))
    var adapters: [String] = []
    @Flag(help: "It may use the base model alone.")
    var base = false
    @Flag(name: .customLong("may-publish"), help: "It may publish (import, upload, activate, roll back) the adapters its patterns cover.")
    var mayPublish = false
    @Flag(help: "An admin token instead: admin rights from any uid, and over TCP.")
    var admin = false

    func validate() throws {
        guard AdapterName.isValid(name) else { throw ValidationError(RegistryError.badName(name).description) }
        for p in adapters where !TenantConfig.isValidPattern(p) {
            throw ValidationError("--adapters \(p): expected a pattern of [a-z0-9._-] with * and ?")
        }
        if admin && (!adapters.isEmpty || base || mayPublish) {
            throw ValidationError("--admin makes an admin token: it takes no --adapters, --base or --may-publish")
        }
    }

    func run() throws {
        var rng = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
        let token = "lorad-" + bytes.map { String(format: "%02x", $0) }.joined()
        let hash = SHA256.hash(data: Array(token.utf8)).map { String(format: "%02x", $0) }.joined()
        print("# \(admin ? "the admin" : name + "'s") token (shown once; give it to \(admin ? "the operator" : "the tenant")):")
        print(token)
        if admin {
            print("\n# in [admin] of lorad.toml, then reload (systemctl reload lorad, or kill -HUP):")
            print("token_sha256 = \"\(hash)\"")
            return
        }
        print("\n# append to lorad.toml, then reload (systemctl reload lorad, or kill -HUP):")
        print("""
            [[tenants]]
            name = "\(name)"
            token_sha256 = "\(hash)"
            adapters = [\(adapters.map { "\"\($0)\"" }.joined(separator: ", "))]
            base = \(base)
            may_publish = \(mayPublish)
            """)
    }
}
