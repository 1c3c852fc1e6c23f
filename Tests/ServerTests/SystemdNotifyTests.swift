// SystemdNotifier against a fake systemd: a datagram socket bound in a temporary directory (and
// one with an abstract name) receives what the daemon would send PID 1. Also WATCHDOG_USEC and
// WATCHDOG_PID as sd_watchdog_enabled(3) reads them.

import Glibc
import Testing
@testable import Server

/// A bound AF_UNIX datagram socket playing systemd's notify socket. `name` is a path, or an
/// abstract name when it starts with "@".
final class FakeNotifySocket {
    let fd: Int32
    let name: String

    init(name: String) throws {
        self.name = name
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        try #require(fd >= 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(name.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        withUnsafeMutableBytes(of: &addr.sun_path) { $0.copyBytes(from: bytes) }
        let length = MemoryLayout<sockaddr_un>.offset(of: \.sun_path)! + bytes.count + (abstract ? 0 : 1)
        let bound = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(length)) }
        }
        try #require(bound == 0, "bind \(name): errno \(errno)")
        // A missing datagram must fail the test, not hang it.
        var timeout = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
    }

    /// The next datagram's text, or nil after the 5 s timeout.
    func receive() -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n < 0 ? nil : String(decoding: buffer[0..<n], as: UTF8.self)
    }

    deinit {
        close(fd)
        if !name.hasPrefix("@") { unlink(name) }
    }
}

@Suite struct SystemdNotifyTests {
    @Test func notifierNeedsAUsableNotifySocket() {
        #expect(SystemdNotifier(environment: [:]) == nil)
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": ""]) == nil)
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": "vsock:2:1234"]) == nil)
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": "relative/notify"]) == nil)
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": "/" + String(repeating: "x", count: 107)]) == nil)
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": "/" + String(repeating: "x", count: 106)]) != nil)
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": "@" + String(repeating: "x", count: 107)]) != nil)
        #expect(SystemdNotifier(environment: ["NOTIFY_SOCKET": "/run/systemd/notify"]) != nil)
    }

    @Test func sendsEachStateToAPathSocket() throws {
        let dir = try OpsScratchDirectory()
        let fake = try FakeNotifySocket(name: dir.path + "/notify")
        let notifier = try #require(SystemdNotifier(environment: ["NOTIFY_SOCKET": fake.name]))

        #expect(notifier.ready(status: "serving 3 adapters\non /run/lorad/lorad.sock"))
        #expect(fake.receive() == "READY=1\nSTATUS=serving 3 adapters on /run/lorad/lorad.sock")
        #expect(notifier.ready())
        #expect(fake.receive() == "READY=1")
        #expect(notifier.status("loading model"))
        #expect(fake.receive() == "STATUS=loading model")
        #expect(notifier.watchdog())
        #expect(fake.receive() == "WATCHDOG=1")
        #expect(notifier.stopping(status: "draining 2 requests"))
        #expect(fake.receive() == "STOPPING=1\nSTATUS=draining 2 requests")
        #expect(notifier.extendTimeout(.seconds(5)))
        #expect(fake.receive() == "EXTEND_TIMEOUT_USEC=5000000")

        #expect(notifier.reloading())
        let reloading = try #require(fake.receive())
        let match = try #require(reloading.wholeMatch(of: /RELOADING=1\nMONOTONIC_USEC=([0-9]+)/))
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let usec = try #require(UInt64(match.1))
        let nowUsec = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        #expect(usec <= nowUsec && nowUsec - usec < 60_000_000)
    }

    @Test func sendsToAnAbstractSocket() throws {
        var random = SystemRandomNumberGenerator()
        let name = "@lorad-test-\(getpid())-\(random.next() as UInt64)"
        let fake = try FakeNotifySocket(name: name)
        let notifier = try #require(SystemdNotifier(environment: ["NOTIFY_SOCKET": name]))
        #expect(notifier.notify("READY=1\nSTATUS=abstract"))
        #expect(fake.receive() == "READY=1\nSTATUS=abstract")
    }

    @Test func reportsFailureWhenNobodyListens() throws {
        let dir = try OpsScratchDirectory()
        let notifier = try #require(SystemdNotifier(environment: ["NOTIFY_SOCKET": dir.path + "/nobody"]))
        #expect(notifier.notify("READY=1") == false)
    }

    @Test func watchdogInterval() {
        let pid = "\(getpid())"
        #expect(SystemdNotifier.watchdogInterval(environment: ["WATCHDOG_USEC": "30000000"]) == .seconds(30))
        #expect(SystemdNotifier.watchdogPingInterval(environment: ["WATCHDOG_USEC": "30000000"]) == .seconds(15))
        #expect(SystemdNotifier.watchdogInterval(environment: ["WATCHDOG_USEC": "1500", "WATCHDOG_PID": pid])
                == .microseconds(1500))
        #expect(SystemdNotifier.watchdogInterval(environment: ["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"]) == nil)
        #expect(SystemdNotifier.watchdogInterval(environment: ["WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "x"]) == nil)
        for bad in ["", "0", "-5", "30s", " 30", "3e7", "99999999999999999999999"] {
            #expect(SystemdNotifier.watchdogInterval(environment: ["WATCHDOG_USEC": bad]) == nil, "\(bad)")
        }
        #expect(SystemdNotifier.watchdogInterval(environment: [:]) == nil)
        #expect(SystemdNotifier.watchdogPingInterval(environment: ["WATCHDOG_PID": pid]) == nil)
    }
}
