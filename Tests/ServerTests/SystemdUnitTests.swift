// systemd/lorad.service, lorad.socket and lorad.sysusers.conf: `systemd-analyze verify` accepts the
// units without a single warning (on a copy whose ExecStart is a binary that exists: the built
// lorad when LORAD_BIN is set, else /bin/true), it does notice a broken copy (so this test can
// fail), and the units agree with each other and with ServerConfig's defaults.

import Foundation
import Testing
@testable import Server

@Suite struct SystemdUnitTests {
    let unitDirectory = opsRepositoryRoot + "/systemd"

    /// systemd-analyze on PATH or in the usual places; nil if systemd is not installed.
    static func systemdAnalyze() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let candidates = path.split(separator: ":").map { "\($0)/systemd-analyze" } + ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs `systemd-analyze verify` on the given files; exit status and everything it printed.
    func verify(_ files: [String]) throws -> (status: Int32, output: String) {
        guard let tool = Self.systemdAnalyze() else {
            Issue.record("systemd-analyze not found: install systemd (apt-get install systemd) to check the unit files")
            throw CancellationError()
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: tool)
        process.arguments = ["verify"] + files
        // Quiet about the host: no pager, no colours, and nothing from a user manager.
        process.environment = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "SYSTEMD_PAGER": "", "SYSTEMD_COLORS": "0", "LANG": "C"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    /// Copies of the units in a temporary directory, with ExecStart pointing at `binary` and
    /// `edit` applied to the service text.
    func copies(in dir: OpsScratchDirectory, binary: String, edit: (String) -> String = { $0 }) throws -> [String] {
        let service = try String(contentsOfFile: unitDirectory + "/lorad.service", encoding: .utf8)
            .replacingOccurrences(of: "ExecStart=/usr/local/bin/lorad ", with: "ExecStart=\(binary) ")
        try dir.write("lorad.service", edit(service))
        try dir.write("lorad.socket", try String(contentsOfFile: unitDirectory + "/lorad.socket", encoding: .utf8))
        return [dir.path + "/lorad.socket", dir.path + "/lorad.service"]
    }

    func binaryForExecStart() -> String {
        if let bin = ProcessInfo.processInfo.environment["LORAD_BIN"], FileManager.default.isExecutableFile(atPath: bin) {
            return bin
        }
        return "/bin/true"
    }

    @Test func systemdAnalyzeIsInstalled() {
        #expect(Self.systemdAnalyze() != nil,
                "systemd-analyze not found: install systemd (apt-get install systemd) to check the unit files")
    }

    @Test func unitsVerifyWithoutWarnings() throws {
        let dir = try OpsScratchDirectory()
        let files = try copies(in: dir, binary: binaryForExecStart())
        #expect(try String(contentsOfFile: files[1], encoding: .utf8).contains("ExecStart=\(binaryForExecStart()) serve "))
        let (status, output) = try verify(files)
        #expect(status == 0, "\(output)")
        #expect(output.isEmpty, "systemd-analyze verify warned:\n\(output)")
    }

    @Test func verifyCatchesABrokenCopy() throws {
        let dir = try OpsScratchDirectory()
        let missing = try copies(in: dir, binary: dir.path + "/no-such-lorad")
        let (status, output) = try verify(missing)
        #expect(status != 0)
        #expect(output.contains("no-such-lorad"))

        let other = try OpsScratchDirectory()
        let misspelt = try copies(in: other, binary: "/bin/true") {
            $0.replacingOccurrences(of: "WatchdogSec=30s", with: "WatchdogSecs=30s")
        }
        let (_, warning) = try verify(misspelt)
        #expect(warning.contains("WatchdogSecs"))
    }

    /// `Key=value` lines of a unit file (repeated keys keep every value).
    func directives(_ file: String) throws -> [String: [String]] {
        var result: [String: [String]] = [:]
        for line in try String(contentsOfFile: unitDirectory + "/" + file, encoding: .utf8).split(separator: "\n") {
            guard !line.hasPrefix("#"), !line.hasPrefix("["), let eq = line.firstIndex(of: "=") else { continue }
            result[String(line[..<eq]), default: []].append(String(line[line.index(after: eq)...]))
        }
        return result
    }

    @Test func serviceHasWhatTheIssueAsks() throws {
        let s = try directives("lorad.service")
        #expect(s["Type"] == ["notify"])  // not notify-reload: Debian 12 has systemd 252
        #expect(s["ExecStart"] == ["/usr/local/bin/lorad serve --config /etc/lorad/lorad.toml"])
        #expect(s["ExecReload"] == ["/bin/kill -HUP $MAINPID"])
        #expect(s["WatchdogSec"] == ["30s"])
        #expect(s["Restart"] == ["on-failure"])
        #expect(s["User"] == ["lorad"] && s["Group"] == ["lorad"])
        #expect(s["RuntimeDirectory"] == ["lorad"] && s["RuntimeDirectoryPreserve"] == ["yes"])
        #expect(s["StateDirectory"] == ["lorad"])
        for hardening in ["NoNewPrivileges", "ProtectHome", "PrivateTmp", "PrivateDevices", "ProtectKernelTunables",
                          "ProtectKernelModules", "ProtectKernelLogs", "ProtectControlGroups", "LockPersonality",
                          "MemoryDenyWriteExecute", "RestrictNamespaces", "RestrictSUIDSGID"] {
            #expect(s[hardening] == ["yes"], "\(hardening)")
        }
        #expect(s["ProtectSystem"] == ["strict"])
        #expect(s["CapabilityBoundingSet"] == [""])
        #expect(s["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6"])
        #expect(s["SystemCallFilter"] == ["@system-service"])
        #expect(s["Requires"] == ["lorad.socket"])
        // The drain deadline must end before systemd's stop timeout does.
        let stop = try #require(s["TimeoutStopSec"]?.first.flatMap { Int($0.dropLast()) })
        #expect(Duration.seconds(stop) > ServerConfig.defaults.server.drainTimeout + .seconds(5))
    }

    /// systemd-sysusers creates the user from the file, in a scratch root (not this machine's /etc).
    @Test func sysusersCreatesTheUser() throws {
        let tool = ["/usr/bin/systemd-sysusers", "/bin/systemd-sysusers"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let sysusers = try #require(tool, "systemd-sysusers not found: install systemd (apt-get install systemd)")
        let root = try OpsScratchDirectory()
        try FileManager.default.createDirectory(atPath: root.path + "/etc", withIntermediateDirectories: true)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: sysusers)
        process.arguments = ["--root=\(root.path)", unitDirectory + "/lorad.sysusers.conf"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(output)")
        let passwd = try String(contentsOfFile: root.path + "/etc/passwd", encoding: .utf8)
        let entry = try #require(passwd.split(separator: "\n").first { $0.hasPrefix("lorad:") })
        let fields = entry.split(separator: ":", omittingEmptySubsequences: false)
        #expect(fields.count == 7 && fields[5] == "/var/lib/lorad" && fields[6] == "/usr/sbin/nologin")
        let group = try String(contentsOfFile: root.path + "/etc/group", encoding: .utf8)
        #expect(group.split(separator: "\n").contains { $0.hasPrefix("lorad:") })
    }

    @Test func socketMatchesTheConfigDefaultsAndTheUser() throws {
        let s = try directives("lorad.socket")
        let config = ServerConfig.defaults.server
        #expect(s["ListenStream"] == [config.socket])
        #expect(s["SocketMode"] == ["0" + String(config.socketMode, radix: 8)])
        #expect(s["SocketUser"] == ["lorad"] && s["SocketGroup"] == ["lorad"])
        #expect(s["WantedBy"] == ["sockets.target"])
        #expect(s["PartOf"] == nil)  // restarting the service must not close the socket

        let sysusers = try String(contentsOfFile: unitDirectory + "/lorad.sysusers.conf", encoding: .utf8)
        let entries = sysusers.split(separator: "\n").filter { !$0.hasPrefix("#") && !$0.isEmpty }
        #expect(entries.count == 1)
        let fields = try #require(entries.first).split(separator: " ", omittingEmptySubsequences: true)
        #expect(fields.first == "u" && fields.dropFirst().first == "lorad")
        #expect(sysusers.contains("/var/lib/lorad"))
    }
}
