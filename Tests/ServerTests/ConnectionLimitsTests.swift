// Connection limits derived from the configuration and the fd limit, the rate-limited refusal log,
// and the percent-decoding of request paths: the pure parts of the hostile-client fixes.

import Foundation
import Testing
@testable import Server

struct ConnectionLimitsTests {
    @Test func automaticLimitsFollowTheFileLimit() {
        // 0 means automatic: the fd limit less the reserve, at most the ceiling; per uid, three quarters.
        let a = ConnectionLimits(maxConnections: 0, maxConnectionsPerUID: 0, fileLimit: 1024)
        #expect(a.total == 1024 - ConnectionLimits.reservedDescriptors)
        #expect(a.perUID == a.total * 3 / 4)
        let big = ConnectionLimits(maxConnections: 0, maxConnectionsPerUID: 0, fileLimit: 1 << 20)
        #expect(big.total == ConnectionLimits.automaticCeiling)
        // A tiny fd limit still leaves a few connections.
        #expect(ConnectionLimits(maxConnections: 0, maxConnectionsPerUID: 0, fileLimit: 100).total == 16)
        // Explicit values win.
        let e = ConnectionLimits(maxConnections: 10, maxConnectionsPerUID: 2, fileLimit: 1024)
        #expect(e.total == 10 && e.perUID == 2)
    }

    @Test func refusalIsA503ThatSaysWhy() throws {
        let text = String(decoding: ConnectionLimits.refusal("too many"), as: UTF8.self)
        #expect(text.hasPrefix("HTTP/1.1 503 "))
        #expect(text.contains("Retry-After: 1\r\n"))
        #expect(text.lowercased().contains("connection: close\r\n"))
        #expect(text.contains("too many") && text.contains("too_many_connections"))
    }

    @Test func refusalsAreLoggedAtMostOncePerInterval() {
        var log = RefusalLog()
        let t0 = Date(timeIntervalSince1970: 1000)
        #expect(log.note("x", now: t0) != nil)
        #expect(log.note("x", now: t0.addingTimeInterval(1)) == nil)
        #expect(log.note("x", now: t0.addingTimeInterval(2)) == nil)
        let later = log.note("x", now: t0.addingTimeInterval(RefusalLog.logInterval + 0.5))
        #expect(later?.contains("2 more since the last such line") == true, "\(later ?? "nil")")
    }
}

/// One rule for where the model and the socket are (LocalDefaults), for every command.
struct LocalDefaultsTests {
    @Test func modelPath() {
        let none: (String) -> Bool = { _ in false }
        let checkout: (String) -> Bool = { $0 == LocalDefaults.checkoutModel }
        #expect(LocalDefaults.modelPath(environment: ["LORAD_MODEL": "/m.gguf"], exists: checkout) == "/m.gguf")
        #expect(LocalDefaults.modelPath(environment: ["LORAD_MODEL": ""], exists: checkout) == LocalDefaults.checkoutModel)
        #expect(LocalDefaults.modelPath(environment: [:], exists: none) == LocalDefaults.systemModel)
    }

    @Test func socketPaths() {
        let running: (String) -> Bool = { $0 == LocalDefaults.checkoutSocket }
        #expect(LocalDefaults.clientSocket(environment: ["LORAD_SOCKET": "/s"], exists: running) == "/s")
        #expect(LocalDefaults.clientSocket(environment: [:], exists: running) == LocalDefaults.checkoutSocket)
        #expect(LocalDefaults.clientSocket(environment: [:], exists: { _ in false }) == LocalDefaults.systemSocket)
        let checkoutAdapters: (String) -> Bool = { $0 == LocalDefaults.checkoutAdapters }
        #expect(LocalDefaults.adaptersDirectory(environment: ["LORAD_ADAPTERS": "/a"], exists: checkoutAdapters) == "/a")
        #expect(LocalDefaults.adaptersDirectory(environment: [:], exists: checkoutAdapters) == LocalDefaults.checkoutAdapters)
        #expect(LocalDefaults.adaptersDirectory(environment: [:], exists: { _ in false }) == LocalDefaults.systemAdapters)
        #expect(LocalDefaults.serverBase(environment: ["LORAD_ADAPTERS": "/a"], exists: { _ in false }).adapters.dir == "/a")
    }

    /// serve: the environment is the base the file and the flags go over.
    @Test func serveLayersFileAndFlagsOverTheEnvironment() throws {
        let base = LocalDefaults.serverBase(environment: ["LORAD_MODEL": "/env.gguf", "LORAD_SOCKET": "/env.sock"],
                                            exists: { _ in false })
        #expect(base.model.path == "/env.gguf" && base.server.socket == "/env.sock")
        let fileSays = try ServerConfig.parse(toml: "[model]\npath = \"/file.gguf\"", source: "x", base: base)
        #expect(fileSays.model.path == "/file.gguf" && fileSays.server.socket == "/env.sock")
        var flagSays = fileSays
        try flagSays.apply(ConfigOverrides(model: "/flag.gguf"))
        #expect(flagSays.model.path == "/flag.gguf")
    }
}
