// Runs the built `lorad` binary as a user would: arguments in, stdout/stderr and exit code out.

import Foundation
import Testing

struct CLIResult {
    let status: Int32
    let stdout: String
    let stderr: String
    /// The process ended by a signal (then `status` is the signal's number).
    var signaled = false
}

enum CLI {
    /// The binary under test: LORAD_BIN (set by `make test`), else the release build beside the tests.
    static func binary() throws -> String {
        if let p = ProcessInfo.processInfo.environment["LORAD_BIN"], !p.isEmpty {
            guard FileManager.default.isExecutableFile(atPath: p) else {
                Issue.record("LORAD_BIN=\(p) is not an executable: run `make test`")
                throw CLIError()
            }
            return p
        }
        // `swift test` puts the test bundle beside the products.
        let dir = Bundle.main.bundleURL.deletingLastPathComponent()
        for candidate in [dir.appendingPathComponent("lorad"), Bundle.main.bundleURL.appendingPathComponent("lorad")]
        where FileManager.default.isExecutableFile(atPath: candidate.path) {
            return candidate.path
        }
        Issue.record("cannot find the lorad binary: set LORAD_BIN or run `make test`")
        throw CLIError()
    }

    static func model() throws -> String {
        guard let p = ProcessInfo.processInfo.environment["LORAD_TEST_MODEL"], !p.isEmpty,
              FileManager.default.fileExists(atPath: p) else {
            Issue.record("LORAD_TEST_MODEL is not set or missing: run `make test`, which fetches the model")
            throw CLIError()
        }
        return p
    }

    static func run(_ args: [String], environment: [String: String] = [:], stdin: String? = nil) throws -> CLIResult {
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "LORAD_MODEL")
        for (k, v) in environment { env[k] = v }
        return try execute(try binary(), args, environment: env, stdin: stdin)
    }

    /// Runs `executable` with exactly `environment` (nil: this process's), feeding `stdin`.
    static func execute(_ executable: String, _ args: [String], environment: [String: String]?,
                        stdin: String? = nil) throws -> CLIResult {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: executable)
        p.arguments = args
        if let environment { p.environment = environment }
        let out = Pipe(), err = Pipe(), input = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = input
        try p.run()
        if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
        try input.fileHandleForWriting.close()
        // Read both pipes fully before waiting, so a large output cannot block the child.
        let group = DispatchGroup()
        nonisolated(unsafe) var errData = Data()
        group.enter()
        DispatchQueue.global().async {
            errData = err.fileHandleForReading.readDataToEndOfFile()
            group.leave()
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        group.wait()
        p.waitUntilExit()
        return CLIResult(status: p.terminationStatus, stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self), signaled: p.terminationReason == .uncaughtSignal)
    }
}

struct CLIError: Error {}
