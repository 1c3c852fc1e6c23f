// LogSetup and StderrLogHandler: one line per event, journald priority prefixes only when stderr
// is the journal stream, timestamps otherwise, logfmt-style metadata, a live process-wide level.

import Glibc
import Logging
import Synchronization
import Testing
@testable import Server

/// Collects the lines a handler writes.
final class CapturedLines: Sendable {
    let lines = Mutex<[String]>([])
    var all: [String] { lines.withLock { $0 } }
    var sink: @Sendable (String) -> Void { { line in self.lines.withLock { $0.append(line) } } }
}

// Serialized: two tests change the process-wide level.
@Suite(.serialized) struct MetricsLogTests {
    let fixedTime = timespec(tv_sec: 1_735_787_045, tv_nsec: 678_900_000)

    @Test func plainLinesCarryATimestamp() {
        let handler = StderrLogHandler(label: "lorad.http", style: .plain, sink: { _ in })
        let line = handler.format(level: .info, message: "request done", metadata: ["status": "200", "path": "/v1/models"],
                                  now: fixedTime)
        #expect(line == "2025-01-02T03:04:05.678Z info lorad.http: request done path=/v1/models status=200\n")
    }

    @Test func journalLinesCarryAPriorityAndNoTimestamp() {
        let handler = StderrLogHandler(label: "lorad", style: .journal, sink: { _ in })
        #expect(handler.format(level: .warning, message: "adapter failed", metadata: ["adapter": "acme"])
                == "<4>warning lorad: adapter failed adapter=acme\n")
        let priorities = Logger.Level.allCases.map { StderrLogHandler.syslogPriority($0) }
        #expect(priorities == [7, 7, 6, 5, 4, 3, 2])
    }

    @Test func oneEventIsOneLine() {
        let handler = StderrLogHandler(label: "lorad", style: .journal, sink: { _ in })
        let line = handler.format(level: .error, message: "two\nlines\r", metadata: [
            "reason": "bad \"thing\"\nhere", "empty": "", "eq": "a=b", "list": ["x", "y z"], "n": .stringConvertible(42),
            "dict": ["k": "v"],
        ])
        #expect(line == #"<3>error lorad: two\nlines\r dict="{k: v}" empty="" eq="a=b" list="[x, y z]" n=42 reason="bad \"thing\"\nhere""# + "\n")
        #expect(line.filter { $0 == "\n" }.count == 1)
    }

    @Test func loggerGoesThroughTheHandlerWithMergedMetadata() {
        let captured = CapturedLines()
        var logger = Logger(label: "lorad.test") { label in
            StderrLogHandler(label: label, style: .journal, sink: captured.sink)
        }
        logger[metadataKey: "conn"] = "7"
        logger.logLevel = .debug  // this logger only
        logger.debug("opened", metadata: ["peer": "uid 1000"])
        logger.trace("not shown")
        logger.info("closed", metadata: ["conn": "8"])
        #expect(captured.all == [
            "<7>debug lorad.test: opened conn=7 peer=\"uid 1000\"\n",
            "<6>info lorad.test: closed conn=8\n",
        ])
    }

    @Test func processWideLevelChangesLive() {
        // The only test that changes the process-wide level; it restores the default.
        defer { LogSetup.setLevel(.info) }
        let captured = CapturedLines()
        let logger = Logger(label: "lorad.level") { StderrLogHandler(label: $0, style: .journal, sink: captured.sink) }
        LogSetup.setLevel(.error)
        #expect(LogSetup.level == .error)
        logger.warning("hidden")
        logger.error("shown")
        LogSetup.setLevel(.debug)
        logger.debug("now shown")
        #expect(captured.all == ["<3>error lorad.level: shown\n", "<7>debug lorad.level: now shown\n"])
    }

    @Test func bootstrapTwiceIsHarmless() {
        defer { LogSetup.setLevel(.info) }
        LogSetup.bootstrap(level: .info, environment: [:])
        LogSetup.bootstrap(level: .notice, environment: [:])
        #expect(LogSetup.level == .notice)
        #expect(Logger(label: "x").handler is StderrLogHandler)
    }

    @Test func journalOnlyWhenStderrIsTheJournalStream() throws {
        let dir = try OpsScratchDirectory()
        let fd = open(dir.path + "/stream", O_CREAT | O_RDWR | O_CLOEXEC, 0o600)
        try #require(fd >= 0)
        defer { close(fd) }
        var st = stat()
        try #require(fstat(fd, &st) == 0)
        let matching = "\(st.st_dev):\(st.st_ino)"
        #expect(StderrLogHandler.Style.detect(environment: ["JOURNAL_STREAM": matching], fd: fd) == .journal)
        #expect(StderrLogHandler.Style.detect(environment: ["JOURNAL_STREAM": "\(st.st_dev):\(st.st_ino + 1)"], fd: fd) == .plain)
        #expect(StderrLogHandler.Style.detect(environment: ["JOURNAL_STREAM": "garbage"], fd: fd) == .plain)
        #expect(StderrLogHandler.Style.detect(environment: [:], fd: fd) == .plain)
    }

    @Test func timestampsAreRFC3339UTC() {
        #expect(StderrLogHandler.timestamp(timespec(tv_sec: 0, tv_nsec: 5_000_000)) == "1970-01-01T00:00:00.005Z")
        #expect(StderrLogHandler.timestamp(timespec(tv_sec: 951_782_400, tv_nsec: 999_999_999)) == "2000-02-29T00:00:00.999Z")
    }
}
