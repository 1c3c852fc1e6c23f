// UVLoop and the small handles: timers (once, repeating, stopped), UVAsync woken from another thread
// (the engine's outbox pattern), a signal delivered as a loop callback, a file-system event, the
// error text, and shutting a loop down with everything still open: every handle closes, clients see
// EOF, the socket file goes, and the handle objects are deallocated (no leak through the
// self-reference each open handle holds).

import Foundation
import Testing
@testable import Server
#if canImport(Glibc)
import Glibc
#endif

@Suite struct UVLoopTests {
    /// Timer due times count from the loop's cached "now", which is only refreshed when the loop
    /// runs, so a test thread descheduled between creating the loop and running it would see every
    /// timer due at once. Nothing here depends on that: the loop is stopped by the repeating timer's
    /// third call, and the check that the stopped timer stays quiet starts from inside a callback
    /// (a fresh loop time), not from before `run`.
    @Test func timersFireOnceOrRepeatUntilStopped() throws {
        let loop = try UVLoop()
        defer { loop.closeAll() }
        var once = 0
        var repeated = 0
        let oneShot = try UVTimer(loop: loop)
        oneShot.start(after: 1) { once += 1 }
        let repeating = try UVTimer(loop: loop)
        let end = try UVTimer(loop: loop)
        repeating.start(after: 1, repeat: 2) {
            repeated += 1
            if repeated == 3 {
                repeating.stop()
                // Five more repeat periods in which a stopped timer must not fire.
                end.start(after: 10) { loop.stop() }
            }
        }
        try runUVLoop(loop)
        #expect(once == 1)
        #expect(repeated == 3)
    }

    @Test func asyncSendFromAnotherThreadWakesTheLoop() throws {
        let loop = try UVLoop()
        defer { loop.closeAll() }
        // The engine's pattern: post to an outbox, send; the loop drains everything pending.
        let outbox = UVLocked<[Int]>([])
        var drained: [Int] = []
        var wakeups = 0
        let async = try UVAsync(loop: loop) {
            wakeups += 1
            drained += outbox.update { items in
                defer { items.removeAll() }
                return items
            }
            if drained.count == 200 { loop.stop() }
        }
        let producer = Thread {
            for item in 0..<200 {
                outbox.update { $0.append(item) }
                async.send()
            }
        }
        producer.start()
        try runUVLoop(loop)
        #expect(drained == Array(0..<200))
        #expect(wakeups >= 1 && wakeups <= 200)
        async.close()
        #expect(async.isClosed)
        async.send()   // after close: ignored, not a use-after-free
    }

    @Test func signalArrivesAsALoopCallback() throws {
        let loop = try UVLoop()
        defer { loop.closeAll() }
        var received = 0
        let watcher = try UVSignal(loop: loop, signal: SIGUSR2) {
            received += 1
            loop.stop()
        }
        #expect(watcher.signal == SIGUSR2)
        let sender = try UVTimer(loop: loop)
        sender.start(after: 1) { kill(getpid(), SIGUSR2) }
        try runUVLoop(loop)
        #expect(received == 1)
        watcher.close()
    }

    @Test func fileSystemEventNamesTheNewFile() throws {
        let dir = try UVTestDirectory()
        defer { dir.remove() }
        let loop = try UVLoop()
        defer { loop.closeAll() }
        var names: [String?] = []
        let watcher = try UVFSEvent(loop: loop, path: dir.path) { name in
            names.append(name)
            if name == "adapter.gguf" { loop.stop() }
        }
        #expect(watcher.path == dir.path)
        let creator = try UVTimer(loop: loop)
        creator.start(after: 1) {
            _ = FileManager.default.createFile(atPath: dir.file("adapter.gguf"), contents: Data([1, 2, 3]))
        }
        try runUVLoop(loop)
        #expect(names.contains("adapter.gguf"))
        #expect(throws: UVError.self) { try UVFSEvent(loop: loop, path: dir.file("missing")) { _ in } }
    }

    @Test func errorTextNamesTheOperationAndTheCode() {
        let error = UVError(errno: EACCES, operation: "bind /run/lorad/lorad.sock")
        #expect(error.description == "bind /run/lorad/lorad.sock: EACCES (permission denied)")
        let hinted = UVError(errno: EADDRINUSE, operation: "bind /x.sock", hint: "another process is listening on /x.sock")
        #expect(hinted.description == "bind /x.sock: EADDRINUSE (address already in use): another process is listening on /x.sock")
    }

    @Test func closeAllWithOpenConnectionsClosesEverything() throws {
        let dir = try UVTestDirectory()
        defer { dir.remove() }
        let path = dir.file("shutdown.sock")
        weak var weakConnection: UVConnection?
        weak var weakListener: UVListener?
        weak var weakTimer: UVTimer?
        weak var weakAsync: UVAsync?
        weak var weakLoop: UVLoop?
        var closes = 0
        var completions: [Bool] = []
        let clientFDs: [Int32]
        do {
            let loop = try UVLoop()
            weakLoop = loop
            let listener = try UVListener.unix(loop: loop, path: path)
            weakListener = listener
            let reads = UVLocked(0)
            let response = uvTestPattern(2_000_000)
            listener.onConnection = { connection in
                weakConnection = connection
                // Callbacks that capture their own connection: the cycle closing must break.
                connection.onRead = { _ in
                    reads.update { $0 += 1 }
                    connection.write(response) { completions.append($0) }
                }
                connection.onClose = { closes += 1 }
                connection.startReading()
            }
            try listener.start()
            // Handles nobody closes: a repeating timer, an async, a signal and a watcher.
            let timer = try UVTimer(loop: loop)
            timer.start(after: 1000, repeat: 1000) { _ = loop }
            weakTimer = timer
            let async = try UVAsync(loop: loop) { _ = loop }
            weakAsync = async
            _ = try UVSignal(loop: loop, signal: SIGUSR1) {}
            _ = try UVFSEvent(loop: loop, path: dir.path) { _ in }

            clientFDs = try runUVLoop(loop) {
                let fds = try (0..<3).map { _ in try UVTestClient.connectUnix(path) }
                for fd in fds { try UVTestClient.send(fd, [1]) }
                guard uvWait(until: { reads.value == 3 }) else { throw UVTestFailure("only \(reads.value) reads") }
                return fds
            }
            loop.closeAll()
            #expect(loop.isClosed)
            #expect(listener.isClosed)
            #expect(timer.isClosed)
            #expect(async.isClosed)
            async.send()   // a thread that still holds the async after shutdown: ignored
        }
        defer { clientFDs.forEach(UVTestClient.close) }
        #expect(closes == 3)
        #expect(completions == [false, false, false])   // 2 MB each cannot all fit in a socket buffer
        var info = stat()
        #expect(lstat(path, &info) == -1)
        // Every client sees the server's bytes that made it out, then EOF (not a timeout).
        for fd in clientFDs {
            #expect((try? UVTestClient.receiveToEOF(fd)) != nil)
        }
        #expect(weakConnection == nil)
        #expect(weakListener == nil)
        #expect(weakTimer == nil)
        #expect(weakAsync == nil)
        #expect(weakLoop == nil)
    }

    @Test func closeAllCalledInsideRunFinishesWhenRunReturns() throws {
        let loop = try UVLoop()
        let pending = try UVTimer(loop: loop)
        pending.start(after: 60_000) {}
        let closer = try UVTimer(loop: loop)
        closer.start(after: 1) { loop.closeAll() }
        try runUVLoop(loop)
        #expect(loop.isClosed)
        #expect(pending.isClosed)
        #expect(closer.isClosed)
    }

    @Test func handlesOnAClosedLoopAreRefused() throws {
        let loop = try UVLoop()
        loop.closeAll()
        #expect(throws: UVError.self) { try UVTimer(loop: loop) }
        #expect(throws: UVError.self) { try UVAsync(loop: loop) {} }
        #expect(throws: UVError.self) { try UVSignal(loop: loop, signal: SIGUSR1) {} }
        #expect(throws: UVError.self) { try UVListener.tcp(loop: loop, host: "127.0.0.1", port: 0) }
        loop.run()   // returns at once
    }
}
