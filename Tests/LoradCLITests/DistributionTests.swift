// What `make install` and `make deb` ship: the static-stdlib binary's
// libraries, stripping and --version, the staged install's layout and the .deb's contents. `make test`
// builds them first and passes their paths: LORAD_DIST_BIN (.build-dist/dist/bin/lorad), LORAD_DEB,
// LORAD_INSTALL_ROOT (a `make install DESTDIR=...`) and LORAD_INSTALL_PREFIX.

import Foundation
import Testing

@Suite struct DistributionTests {
    /// The repository root, from this file's path (Tests/LoradCLITests/DistributionTests.swift).
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().path

    static func path(_ variable: String) throws -> String {
        guard let p = ProcessInfo.processInfo.environment[variable], !p.isEmpty,
              FileManager.default.fileExists(atPath: p) else {
            Issue.record("\(variable) is not set or missing: run `make test`, which builds the distribution")
            throw CLIError()
        }
        return p
    }

    /// Runs a tool (found on PATH) and returns its status and output.
    static func sh(_ args: [String], environment: [String: String]? = nil) throws -> CLIResult {
        try CLI.execute("/usr/bin/env", args, environment: environment)
    }

    static func needed(_ binary: String) throws -> (libraries: [String], dynamic: String) {
        let r = try sh(["readelf", "-d", binary], environment: ["LC_ALL": "C", "PATH": "/usr/bin:/bin"])
        #expect(r.status == 0, "\(r.stderr)")
        let libs = r.stdout.split(separator: "\n").filter { $0.contains("(NEEDED)") }.compactMap { line in
            line.split(separator: "[").last.map { String($0.dropLast()) }
        }
        return (libs, r.stdout)
    }

    // MARK: the binary

    @Test func distBinaryNeedsOnlyTheSystemOpenBLASAndLibuv() throws {
        let bin = try Self.path("LORAD_DIST_BIN")
        let (libs, dynamic) = try Self.needed(bin)
        #expect(libs.contains("libopenblas.so.0") && libs.contains("libuv.so.1"), "\(libs)")
        for lib in libs {
            #expect(!["libswift", "libFoundation", "libdispatch", "libBlocksRuntime", "libicu", "libcurl", "libxml2", "libedit"]
                .contains { lib.hasPrefix($0) }, "\(lib): not on a Debian 12 host without Swift (libedit is dlopen'ed)")
        }
        #expect(!dynamic.contains("(RUNPATH)") && !dynamic.contains("(RPATH)"), "\(dynamic)")
        // The loader finds every library here with no help (LD_LIBRARY_PATH cleared), none in the toolchain.
        let ldd = try Self.sh(["ldd", bin], environment: ["PATH": "/usr/bin:/bin"])
        #expect(ldd.status == 0 && !ldd.stdout.contains("not found") && !ldd.stdout.contains("/opt/swift"),
                "\(ldd.stdout)")
    }

    @Test func allowListAcceptsTheDistBinaryAndRejectsTheTestingBuild() throws {
        let check = Self.root + "/scripts/check-binary-deps"
        let dist = try Self.sh([check, try Self.path("LORAD_DIST_BIN")])
        #expect(dist.status == 0, "\(dist.stderr)")
        // The -enable-testing build links the toolchain's libraries: the same check must refuse it.
        let testing = try Self.sh([check, try CLI.binary()])
        #expect(testing.status != 0)
        #expect(testing.stderr.contains("libswiftCore.so") && testing.stderr.contains("run path"), "\(testing.stderr)")
    }

    @Test func distBinaryIsStrippedAndRuns() throws {
        let bin = try Self.path("LORAD_DIST_BIN")
        let sections = try Self.sh(["readelf", "-S", bin], environment: ["LC_ALL": "C", "PATH": "/usr/bin:/bin"])
        #expect(sections.status == 0)
        #expect(!sections.stdout.contains(".symtab") && !sections.stdout.contains(".debug_"), "not stripped")
        let help = try Self.sh([bin, "--help"], environment: ["PATH": "/usr/bin:/bin"])
        #expect(help.status == 0 && help.stdout.contains("SUBCOMMANDS"), "\(help.stderr)")
    }

    @Test func versionNamesTheCommitBuiltFrom() throws {
        let head = try Self.sh(["git", "-C", Self.root, "rev-parse", "HEAD"])
        #expect(head.status == 0, "the tests run in a git checkout (CI clones): \(head.stderr)")
        let commit = head.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        for bin in [try Self.path("LORAD_DIST_BIN"), try CLI.binary()] {
            let r = try Self.sh([bin, "--version"])
            #expect(r.status == 0, "\(r.stderr)")
            let line = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let m = try #require(line.wholeMatch(
                of: /lorad \d+\.\d+\.\d+ \(commit ([0-9a-f]{12})( \+ local changes)?, \d{4}-\d{2}-\d{2}\)/),
                "\(bin): \(line)")
            #expect(commit.hasPrefix(String(m.output.1)), "\(line) is not HEAD \(commit)")
        }
    }

    // MARK: make install

    @Test func installLaysOutEveryFile() throws {
        let root = try Self.path("LORAD_INSTALL_ROOT")
        let prefix = ProcessInfo.processInfo.environment["LORAD_INSTALL_PREFIX"] ?? "/usr/local"
        let fm = FileManager.default
        let bin = root + prefix + "/bin/lorad"
        #expect(fm.isExecutableFile(atPath: bin))
        #expect(fm.contentsEqual(atPath: bin, andPath: try Self.path("LORAD_DIST_BIN")), "the dist binary is installed")
        let unitDir = ["/usr", "/usr/local"].contains(prefix) ? prefix + "/lib/systemd/system" : "/etc/systemd/system"
        let service = try String(contentsOfFile: root + unitDir + "/lorad.service", encoding: .utf8)
        #expect(service.contains("\nExecStart=\(prefix)/bin/lorad serve --config /etc/lorad/lorad.toml\n"))
        #expect(fm.fileExists(atPath: root + unitDir + "/lorad.socket"))
        #expect(fm.fileExists(atPath: root + "/etc/lorad/lorad.toml"))
        #expect(fm.fileExists(atPath: root + "/usr/lib/sysusers.d/lorad.conf"))
        let tmpfiles = try String(contentsOfFile: root + "/usr/lib/tmpfiles.d/lorad.conf", encoding: .utf8)
        for dir in ["/var/lib/lorad ", "/var/lib/lorad/models ", "/var/lib/lorad/adapters "] {
            #expect(tmpfiles.contains("\nd     \(dir)"), "tmpfiles.d makes \(dir)")
        }
        let zshDir = prefix == "/usr" ? "/share/zsh/vendor-completions" : "/share/zsh/site-functions"
        let bash = try String(contentsOfFile: root + prefix + "/share/bash-completion/completions/lorad", encoding: .utf8)
        #expect(bash.contains("complete ") && bash.contains("serve"))
        let zsh = try String(contentsOfFile: root + prefix + zshDir + "/_lorad", encoding: .utf8)
        #expect(zsh.hasPrefix("#compdef lorad"))
        let fish = try String(contentsOfFile: root + prefix + "/share/fish/vendor_completions.d/lorad.fish", encoding: .utf8)
        #expect(fish.contains("complete -c 'lorad'"))
        let man = root + prefix + "/share/man/man1"
        let page = try String(contentsOfFile: man + "/lorad.1", encoding: .utf8)
        #expect(page.contains(".Dt LORAD 1") && page.contains("serve"))
        let serve = try String(contentsOfFile: man + "/lorad.serve.1", encoding: .utf8)
        #expect(serve.contains(".Dt LORAD.SERVE 1") && serve.contains(".It Fl -adapters Ar dir"),
                "a page per subcommand, with its options")
    }

    // MARK: make deb

    @Test func debHoldsTheInstallAndItsScripts() throws {
        let deb = try Self.path("LORAD_DEB")
        let listing = try Self.sh(["dpkg-deb", "-c", deb])
        #expect(listing.status == 0, "\(listing.stderr)")
        let paths = Set(listing.stdout.split(separator: "\n").compactMap { $0.split(separator: " ").last.map(String.init) })
        for path in ["./usr/bin/lorad", "./usr/lib/systemd/system/lorad.service", "./usr/lib/systemd/system/lorad.socket",
                     "./etc/lorad/lorad.toml", "./usr/lib/sysusers.d/lorad.conf", "./usr/lib/tmpfiles.d/lorad.conf",
                     "./usr/share/bash-completion/completions/lorad", "./usr/share/zsh/vendor-completions/_lorad",
                     "./usr/share/fish/vendor_completions.d/lorad.fish", "./usr/share/man/man1/lorad.1.gz",
                     "./usr/share/man/man1/lorad.serve.1.gz"] {
            #expect(paths.contains(path), "\(path) missing from the .deb")
        }
        #expect(listing.stdout.contains("root/root"), "files owned by root")

        func field(_ name: String) throws -> String {
            try Self.sh(["dpkg-deb", "-f", deb, name]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        #expect(try field("Package") == "lorad")
        let depends = try field("Depends")
        for dep in ["libopenblas0 | libopenblas0-pthread", "libuv1", "systemd", "libc6 (>= 2."] {
            #expect(depends.contains(dep), "Depends: \(depends)")
        }
        #expect(!depends.contains("libedit"), "Depends: \(depends)")
        #expect(try field("Recommends") == "libedit2", "chat's line editing")
        let version = try Self.sh([try Self.path("LORAD_DIST_BIN"), "--version"]).stdout
        let commit = try #require(version.firstMatch(of: /commit ([0-9a-f]{12})/)).output.1
        #expect(try field("Version").hasSuffix("." + commit), "the package version names the commit")
        let installed = try #require(Int(try field("Installed-Size")))
        let binSize = try #require(FileManager.default.attributesOfItem(atPath: try Self.path("LORAD_DIST_BIN"))[.size] as? Int)
        #expect(installed >= binSize / 1024 && installed < binSize / 1024 + 2048, "Installed-Size \(installed) KiB")

        let conffiles = try Self.sh(["dpkg-deb", "-I", deb, "conffiles"])
        #expect(conffiles.stdout == "/etc/lorad/lorad.toml\n", "\(conffiles.stdout)")
        let postinst = try Self.sh(["dpkg-deb", "-I", deb, "postinst"]).stdout
        #expect(postinst.contains("systemd-sysusers /usr/lib/sysusers.d/lorad.conf"))
        #expect(postinst.contains("systemd-tmpfiles --create /usr/lib/tmpfiles.d/lorad.conf"))
        #expect(postinst.contains("daemon-reload"))
        for script in ["prerm", "postrm"] {
            #expect(try Self.sh(["dpkg-deb", "-I", deb, script]).status == 0, "\(script) present")
        }

        // The packaged unit starts the packaged binary.
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lorad-deb-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try Self.sh(["dpkg-deb", "-x", deb, dir]).status == 0)
        let service = try String(contentsOfFile: dir + "/usr/lib/systemd/system/lorad.service", encoding: .utf8)
        #expect(service.contains("\nExecStart=/usr/bin/lorad serve --config /etc/lorad/lorad.toml\n"))
        #expect(FileManager.default.contentsEqual(atPath: dir + "/usr/bin/lorad", andPath: try Self.path("LORAD_DIST_BIN")))
    }

    // MARK: reproducible builds

    @Test func packageResolvedIsCommitted() throws {
        let r = try Self.sh(["git", "-C", Self.root, "ls-files", "--error-unmatch", "Package.resolved"])
        #expect(r.status == 0, "Package.resolved is tracked: \(r.stderr)")
    }
}
