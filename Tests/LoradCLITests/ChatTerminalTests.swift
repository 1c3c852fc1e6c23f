// `lorad chat` as a person uses it: on a terminal (PseudoTerminal) for Ctrl-C, Ctrl-D and history,
// through a pipe for the slash commands' effect on replies, and through a daemon started here.
// Greedy sampling on the real SmolLM2 (LORAD_TEST_MODEL), so replies are known; the tiny model where
// only the loop matters.

import Foundation
import Testing
#if canImport(Glibc)
import Glibc
#endif

enum ChatFixtures {
    static let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    static let tinyModel = tests.appendingPathComponent("Fixtures/tiny_chat/model.gguf").path
    /// A PEFT adapter for SmolLM2 that changes its greedy answers (scripts/goldens/lora_*.py).
    static let peft = tests.appendingPathComponent("LlamaTests/Fixtures/lora_smollm2_peft").path

    static func temporaryDirectory() throws -> URL {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("lorad-chat-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir
    }

    /// The environment of a chat on a terminal: a home of its own (no ~/.editrc, no stray history).
    static func environment(home: URL) -> [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["LORAD_MODEL"] = nil
        env["TERM"] = "xterm"
        env["HOME"] = home.path
        env["XDG_STATE_HOME"] = home.appendingPathComponent("state").path
        return env
    }

    /// Starts `lorad chat ARGS` on a terminal and waits for its first prompt.
    static func terminalChat(_ args: [String], home: URL) throws -> TerminalSession {
        let chat = try TerminalSession([try CLI.binary(), "chat"] + args, environment: environment(home: home))
        try chat.expect("> ")
        return chat
    }

    /// The replies in a piped chat's stdout: each prompt "> " is followed by the reply (slash
    /// commands answer on stderr).
    static func replies(_ stdout: String) -> [String] {
        stdout.components(separatedBy: "> ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
    }

    /// libedit writes its history with spaces as \040 (strvis).
    static func historyLines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").dropFirst()
            .map { $0.replacingOccurrences(of: "\\040", with: " ") }
    }
}

@Suite struct ChatTerminalTests {
    static let greedy = ["--temperature", "0", "--threads", "1"]

    /// The reported bug: Ctrl-C at an empty prompt was swallowed and then stopped the next reply
    /// after one token. Now it gives a fresh prompt, as does Ctrl-C on a half-typed line (which is
    /// dropped, not sent), and the next reply is whole.
    @Test func ctrlCAtThePromptClearsTheLineAndNeverStopsTheNextReply() throws {
        let home = try ChatFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: home) }
        let history = home.appendingPathComponent("history").path
        let chat = try ChatFixtures.terminalChat(["--model", try CLI.model(), "--max-tokens", "40", "--history-file", history]
                                                 + Self.greedy, home: home)
        chat.send("\u{03}")
        try chat.expect("^C")
        try chat.expect("> ")
        chat.send("half a line")
        try chat.expect("half a line")
        chat.send("\u{03}")
        try chat.expect("^C")
        try chat.expect("> ")
        chat.send("What is the capital of France?\r")
        let reply = try chat.expect("\n> ")
        #expect(reply.contains("The capital of France is Paris."), "\(chat.transcript)")
        #expect(!reply.contains("[stopped]"), "\(chat.transcript)")
        chat.send("/bye\r")
        #expect(chat.waitExit() == 0, "\(chat.transcript)")
        // Only what was entered is in the history: the cleared half line never was.
        #expect(ChatFixtures.historyLines(history) == ["What is the capital of France?", "/bye"])
    }

    /// Ctrl-C during a reply stops that reply only; the next one is whole.
    @Test func ctrlCStopsTheReplyBeingWritten() throws {
        let home = try ChatFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: home) }
        let chat = try ChatFixtures.terminalChat(["--model", try CLI.model(), "--max-tokens", "400", "--no-history-file"]
                                                 + Self.greedy, home: home)
        try Self.stopACountThenAskAgain(chat)
        chat.send("/bye\r")
        #expect(chat.waitExit() == 0, "\(chat.transcript)")
    }

    static func stopACountThenAskAgain(_ chat: TerminalSession) throws {
        chat.send("Count from 1 to 100, separated by commas.\r")
        try chat.expect("commas.\r\n")
        try chat.expect("2")  // the reply has started (400 tokens would take seconds)
        chat.send("\u{03}")
        let stopped = try chat.expect("[stopped]")
        #expect(stopped.count < 300, "the reply ran on after Ctrl-C: \(chat.transcript)")
        try chat.expect("> ")
        chat.send("What is the capital of France?\r")
        let reply = try chat.expect("\n> ")
        #expect(reply.contains("Paris"), "\(chat.transcript)")
        #expect(!reply.contains("[stopped]"), "\(chat.transcript)")
    }

    /// Up recalls earlier lines, in this session and (from the history file) the next; Ctrl-D on an
    /// empty line quits. Slash commands make the effect visible without a model's reply.
    @Test func upArrowRecallsHistoryAcrossSessionsAndCtrlDQuits() throws {
        let home = try ChatFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: home) }
        let args = ["--model", ChatFixtures.tinyModel, "--max-tokens", "4", "--threads", "1"]  // the default history file
        let chat = try ChatFixtures.terminalChat(args, home: home)
        chat.send("/system Answer in one word.\r")
        try chat.expect("system message set")
        try chat.expect("> ")
        chat.send("/clear\r")
        try chat.expect("cleared the conversation (the system message stays)")
        try chat.expect("> ")
        chat.send("\u{1b}[A\u{1b}[A\r")  // Up, Up: the /system line
        try chat.expect("system message set")
        try chat.expect("> ")
        chat.send("/system\r")
        try chat.expect("system: Answer in one word.")
        try chat.expect("> ")
        chat.send("\u{04}")
        #expect(chat.waitExit() == 0, "\(chat.transcript)")

        let file = home.appendingPathComponent("state/lorad/chat_history").path
        #expect(ChatFixtures.historyLines(file).suffix(2) == ["/system Answer in one word.", "/system"])
        let attributes = try FileManager.default.attributesOfItem(atPath: file)
        #expect((attributes[.posixPermissions] as? Int) == 0o600, "chat history is private")

        let next = try ChatFixtures.terminalChat(args, home: home)
        next.send("\u{1b}[A\u{1b}[A\r")  // the previous session's /system Answer in one word.
        try next.expect("system message set")
        try next.expect("> ")
        next.send("/nonsense\r")
        try next.expect("unknown command /nonsense")
        try next.expect("> ")
        next.send("\u{04}")
        #expect(next.waitExit() == 0, "\(next.transcript)")
    }
}

@Suite struct ChatCommandTests {
    static let greedy = ["--temperature", "0", "--max-tokens", "24", "--threads", "1"]

    /// After /clear the reply is the one a fresh chat gives; without it the earlier turn changes it.
    @Test func clearForgetsTheConversation() throws {
        let model = try CLI.model()
        let question = "What did I just ask you?\n"
        let cleared = try CLI.run(["chat", "--model", model] + Self.greedy, stdin: "What is the capital of France?\n/clear\n" + question)
        let fresh = try CLI.run(["chat", "--model", model] + Self.greedy, stdin: question)
        let kept = try CLI.run(["chat", "--model", model] + Self.greedy, stdin: "What is the capital of France?\n" + question)
        #expect(cleared.status == 0 && fresh.status == 0 && kept.status == 0, "\(cleared.stderr)")
        #expect(cleared.stderr.contains("cleared the conversation"))
        let (c, f, k) = (ChatFixtures.replies(cleared.stdout), ChatFixtures.replies(fresh.stdout), ChatFixtures.replies(kept.stdout))
        #expect(c.count == 2 && f.count == 1 && k.count == 2, "\(cleared.stdout) | \(fresh.stdout) | \(kept.stdout)")
        #expect(c.last == f.last)
        #expect(k.last != f.last, "the question must depend on the conversation for this test to mean anything")
    }

    /// /adapter switches among the --adapter ones and back to the base; each reply is the one
    /// `lorad generate` gives with the same adapter. Unknown commands and names get a hint and
    /// reach no model; /bye quits before the lines after it.
    @Test func adapterSwitchesAndByeQuits() throws {
        let model = try CLI.model()
        let haiku = "Write a haiku about the sea."
        let base = try CLI.run(["generate", "--model", model, haiku] + Self.greedy)
        let adapted = try CLI.run(["generate", "--model", model, "--adapter", ChatFixtures.peft, haiku] + Self.greedy)
        #expect(base.stdout != adapted.stdout)
        let script = [haiku, "/adapter", "/adapter base", "/clear", haiku, "/adapter nope", "/nosuch",
                      "/adapter lora_smollm2_peft", "/clear", haiku, "/bye", "never sent"].joined(separator: "\n") + "\n"
        let r = try CLI.run(["chat", "--model", model, "--adapter", ChatFixtures.peft] + Self.greedy, stdin: script)
        #expect(r.status == 0, "\(r.stderr)")
        let replies = ChatFixtures.replies(r.stdout)
        let expected = [adapted.stdout, base.stdout, adapted.stdout].map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        #expect(replies == expected, "\(r.stdout)")
        for note in ["adapter: lora_smollm2_peft", "adapter: none (the base model)", "no adapter named 'nope'",
                     "unknown command /nosuch"] {
            #expect(r.stderr.contains(note), "\(r.stderr)")
        }
    }

    @Test func optionsThatDoNotGoTogether() throws {
        let r = try CLI.run(["chat", "--socket", "/nonexistent.sock", "--model", "x.gguf"])
        #expect(r.status == 64 && r.stderr.contains("--model-name"), "\(r.stderr)")
        let name = try CLI.run(["chat", "--model-name", "alpha"])
        #expect(name.status == 64 && name.stderr.contains("--socket"), "\(name.stderr)")
        let gone = try CLI.run(["chat", "--socket", "/nonexistent.sock"], stdin: "hi\n")
        #expect(gone.status == 1 && gone.stderr.contains("cannot connect"), "\(gone.stderr)")
    }
}

/// `lorad serve` on the real model with the PEFT adapter (as "peft"), for chat --socket.
final class ChatDaemon {
    let dir: URL
    let socket: String
    let log: String
    let pid: pid_t

    init() throws {
        dir = try ChatFixtures.temporaryDirectory()
        socket = dir.appendingPathComponent("lorad.sock").path
        log = dir.appendingPathComponent("daemon.log").path
        let adapters = dir.appendingPathComponent("adapters")
        try FileManager.default.createDirectory(at: adapters, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: ChatFixtures.peft, toPath: adapters.appendingPathComponent("peft").path)
        let argv = [try CLI.binary(), "serve", "--model", try CLI.model(), "--adapters", adapters.path,
                    "--socket", socket, "--threads", "1"]
        var env = ProcessInfo.processInfo.environment
        for key in ["NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LORAD_MODEL"] { env[key] = nil }
        let log = self.log
        let pid = try spawnProcess(argv, environment: env) { actions in
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0o644)
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        self.pid = pid
        // Ready once the socket accepts (it is created after the model and adapters are loaded).
        let deadline = Date().addingTimeInterval(120)
        while !Self.accepts(socket) {
            var status: Int32 = 0
            guard Date() < deadline, waitpid(pid, &status, WNOHANG) == 0 else {
                throw TerminalError(description: "lorad serve did not start:\n\(logText)")
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
    }

    deinit {
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        try? FileManager.default.removeItem(at: dir)
    }

    var logText: String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }

    private static func accepts(_ path: String) -> Bool {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() where i < raw.count - 1 { raw[i] = b }
        }
        return withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        } == 0
    }
}

@Suite(.serialized) struct ChatDaemonTests {
    /// Through the daemon: replies stream, /adapter checks the name against the daemon's models,
    /// Ctrl-C closes the request (the daemon logs it cancelled) and the next reply is whole.
    @Test func chatThroughTheSocket() throws {
        let daemon = try ChatDaemon()
        let greedy = ["--temperature", "0", "--max-tokens", "24"]
        let piped = try CLI.run(["chat", "--socket", daemon.socket] + greedy,
                                stdin: "/adapter\nWhat is the capital of France?\n/adapter peft\n/adapter nope\n/adapter base\n/adapter\n")
        #expect(piped.status == 0, "\(piped.stderr)")
        #expect(ChatFixtures.replies(piped.stdout) == ["The capital of France is Paris."], "\(piped.stdout)")
        for note in ["adapter: none (the base model, base)", "adapter: peft", "the daemon serves no model 'nope'"] {
            #expect(piped.stderr.contains(note), "\(piped.stderr)")
        }
        let named = try CLI.run(["chat", "--socket", daemon.socket, "--model-name", "peft"], stdin: "/adapter\n")
        #expect(named.status == 0 && named.stderr.contains("adapter: peft"), "\(named.stderr)")

        let home = try ChatFixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: home) }
        let chat = try ChatFixtures.terminalChat(["--socket", daemon.socket, "--temperature", "0", "--max-tokens", "400",
                                                  "--no-history-file"], home: home)
        try ChatTerminalTests.stopACountThenAskAgain(chat)
        chat.send("/bye\r")
        #expect(chat.waitExit() == 0, "\(chat.transcript)")
        let deadline = Date().addingTimeInterval(60)
        while !daemon.logText.contains("cancelled after") && Date() < deadline { Thread.sleep(forTimeInterval: 0.1) }
        #expect(daemon.logText.contains("499") && daemon.logText.contains("cancelled after"), "\(daemon.logText)")
    }
}
