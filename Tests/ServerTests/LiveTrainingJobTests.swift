// Training jobs inside a running daemon (issue 19), from the outside: a job submitted over the
// socket is followed through its Server-Sent Events to `succeeded` and its version is published
// (and activated as asked); a held-out paraphrase is then answered with the trained fact;
// if_better activates only a lower eval loss; a cancelled job, a drained one and a
// daemon killed mid-job publish nothing, and the killed daemon's job reads back as failed; bad
// requests are 400s with nothing queued; tenants train only their own adapters and see only their
// own jobs and uploaded files, and a file a queued or running job uses cannot be deleted. The training is tiny (a few rows, rank 2, two projections, a few steps) so each job
// takes seconds on SmolLM2.

import Crypto
import Foundation
import JSON
import LoradClient
import Testing
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct LiveTrainingJobTests {
    static func row(_ user: String, _ assistant: String) -> JSONValue {
        .object([("messages", .array([.object([("role", .string("user")), ("content", .string(user))]),
                                       .object([("role", .string("assistant")), ("content", .string(assistant))])]))])
    }

    /// Made-up facts the base cannot know.
    static let facts: [JSONValue] = [
        row("What is the capital of Zorbland?", "The capital of Zorbland is Quibbleton."),
        row("Who founded Quibbleton?", "Quibbleton was founded by Mira Thale."),
        row("What does Zorbland export?", "Zorbland exports blue salt."),
        row("What is Zorbland's currency?", "Zorbland pays in glints."),
    ]
    static let factsEval: [JSONValue] = [
        row("Name the capital of Zorbland.", "The capital of Zorbland is Quibbleton."),
        row("What does Zorbland sell abroad?", "Zorbland exports blue salt."),
    ]
    /// Rows that have nothing to do with the facts, for a run that cannot improve their eval loss.
    static let noise: [JSONValue] = [
        row("zq", "vvk pqxx rrt zzgh"), row("mmw", "qqpl xxj kkv"), row("ptt", "jjq wwx zzp"), row("kkq", "xxv ppj qqz"),
    ]

    static func hyper(epochs: Int = 1, lr: Double = 1e-3, extra: [(String, JSONValue)] = []) -> JSONValue {
        .object([("epochs", .int(epochs)), ("batch_size", .int(2)), ("rank", .int(2)), ("alpha", .double(4)),
                 ("targets", .array([.string("q_proj"), .string("v_proj")])), ("max_seq", .int(64)), ("learning_rate", .double(lr))] + extra)
    }

    static func smolDaemon(beforeStart: ((URL) throws -> Void)? = nil) throws -> LiveDaemon {
        try LiveDaemon(model: try LiveFixtures.realModel(), adapters: false, beforeStart: beforeStart)
    }

    /// The job's SSE events until it ends: the `fine_tuning.job.event`s, then the final job object.
    static func follow(_ d: LiveDaemon, _ id: String, token: String? = nil,
                       onEvent: ((JSONValue) throws -> Void)? = nil) throws -> (events: [JSONValue], job: JSONValue?) {
        let c = try DaemonClient(socket: d.socket, timeoutSeconds: 300)
        try c.request(method: "GET", path: "/v1/jobs/\(id)/events", headers: token.map { [("Authorization", "Bearer \($0)")] } ?? [])
        let h = try c.readHead()
        guard h.status == 200 else { throw LiveError("events: \(h.status) \(String(decoding: try c.readBody(), as: UTF8.self))") }
        var events: [JSONValue] = [], job: JSONValue?
        try c.readEvents { data in
            guard data != "[DONE]", let v = try? JSONValue.parse(Array(data.utf8)) else { return }
            if v["object"]?.stringValue == "fine_tuning.job" { job = v; return }
            events.append(v)
            try onEvent?(v)
        }
        return (events, job)
    }

    static func submit(_ d: LiveDaemon, _ adapter: String, _ body: [(String, JSONValue)], token: String? = nil) throws -> JSONValue {
        let r = token == nil ? try d.post("/v1/adapters/\(adapter)/train", .object(body))
                             : try d.call("POST", "/v1/adapters/\(adapter)/train", .object(body), token: token!)
        guard r.status == 202, let job = r.json, let id = job["id"]?.stringValue, id.hasPrefix("ftjob-") else {
            throw LiveError("submit \(adapter): \(r.status) \(r.text)")
        }
        return job
    }

    /// The registry's top-level entries (adapters and .jobs), to show a run left nothing behind.
    static func registryEntries(_ d: LiveDaemon) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: d.dir.appendingPathComponent("adapters").path).sorted()
    }

    @Test func aJobTrainsPublishesAndActivatesAsAsked() throws {
        let d = try Self.smolDaemon()
        let job = try Self.submit(d, "zorb", [("examples", .array(Self.facts)), ("eval_examples", .array(Self.factsEval)),
                                              ("hyperparameters", Self.hyper(epochs: 1)), ("activate", .string("always"))])
        let id = job["id"]!.stringValue!
        #expect(["queued", "running"].contains(job["status"]?.stringValue ?? ""), "\(job)")
        #expect(job["examples"]?.intValue == 4 && job["eval_examples"]?.intValue == 2)
        let (events, final) = try Self.follow(d, id)
        let steps = events.compactMap { $0["data"]?["train_loss"] != nil ? $0["data"]?["step"]?.intValue : nil }
        // 4 rows in batches of 2 for 1 epoch: 2 steps, each reported in order.
        #expect(steps == [1, 2], "\(events.map { $0["message"]?.stringValue ?? "" })")
        #expect(events.contains { $0["data"]?["eval_loss"] != nil })
        #expect(events.last?["status"]?.stringValue == "succeeded", "\(events.last.map { "\($0)" } ?? "none")\n\(d.logText)")
        #expect(final?["status"]?.stringValue == "succeeded")
        #expect(final?["fine_tuned_model"]?.stringValue == "zorb@v1")
        #expect(final?["result_version"]?.intValue == 1 && final?["activated"]?.boolValue == true)
        #expect(final?["losses"]?.arrayValue?.count == 2)
        #expect((final?["trained_tokens"]?.intValue ?? 0) > 0)

        // Published and active; the daemon serves it at once.
        let shown = try d.get("/v1/adapters/zorb")
        #expect(shown.status == 200 && shown.json?["active"]?.intValue == 1, "\(shown.text)")
        #expect(shown.json?["served_version"]?.intValue == 1, "\(shown.text)")
        let chat = try d.post("/v1/chat/completions", chatBody(model: "zorb", "What is the capital of Zorbland?", maxTokens: 8))
        #expect(chat.status == 200, "\(chat.text)")
        let got = try d.get("/v1/jobs/\(id)")
        #expect(got.status == 200 && got.json?["status"]?.stringValue == "succeeded")
        #expect(try d.get("/v1/jobs").json?["data"]?.arrayValue?.count == 1)
        #expect(try d.metric("lorad_training_jobs{state=\"succeeded\"}") == 1)
        // The job and its log are on disk under the registry root.
        let jobDir = d.dir.appendingPathComponent("adapters/.jobs/\(id)")
        #expect(FileManager.default.fileExists(atPath: jobDir.appendingPathComponent("job.json").path))
        #expect(FileManager.default.fileExists(atPath: jobDir.appendingPathComponent("events.jsonl").path))

        // if_better, again on the facts (the eval loss keeps falling at this rate): v2 becomes active.
        let better = try Self.submit(d, "zorb", [("examples", .array(Self.facts)), ("eval_examples", .array(Self.factsEval)),
                                                 ("hyperparameters", .object([("epochs", .int(1)), ("batch_size", .int(2)),
                                                                              ("learning_rate", .double(1e-3)), ("max_seq", .int(64))])),
                                                 ("activate", .string("if_better"))])
        let b = try Self.follow(d, better["id"]!.stringValue!).job
        let bEval = b?["eval_loss"]?.doubleValue ?? .nan, bParent = b?["parent_eval_loss"]?.doubleValue ?? .nan
        #expect(b?["status"]?.stringValue == "succeeded" && b?["result_version"]?.intValue == 2, "\(b.map { "\($0)" } ?? "")")
        #expect(bEval < bParent && b?["activated"]?.boolValue == true, "eval \(bEval) parent \(bParent)")
        #expect(try d.get("/v1/adapters/zorb").json?["active"]?.intValue == 2)

        // if_better on rows unrelated to the eval rows at a high rate: the eval loss does not fall
        // below the parent's, so v3 is published but v2 stays active.
        let worse = try Self.submit(d, "zorb", [("examples", .array(Self.noise)), ("eval_examples", .array(Self.factsEval)),
                                                ("hyperparameters", .object([("epochs", .int(1)), ("batch_size", .int(2)),
                                                                             ("learning_rate", .double(2e-2)), ("max_seq", .int(64))])),
                                                ("activate", .string("if_better"))])
        let w = try Self.follow(d, worse["id"]!.stringValue!).job
        let wEval = w?["eval_loss"]?.doubleValue ?? .nan, wParent = w?["parent_eval_loss"]?.doubleValue ?? .nan
        #expect(w?["status"]?.stringValue == "succeeded" && w?["result_version"]?.intValue == 3, "\(w.map { "\($0)" } ?? "")")
        #expect(!(wEval < wParent) && w?["activated"]?.boolValue == false, "eval \(wEval) parent \(wParent)")
        #expect(try d.get("/v1/adapters/zorb").json?["active"]?.intValue == 2)
    }

    /// The mission in small: a product posts transcripts with a fact, the daemon trains and activates
    /// the adapter while serving, and a question worded unlike any training row is answered with the
    /// fact, which the base does not know. Four steps at a high rate on three rows: measured with
    /// `lorad train` (same rows and settings), the greedy answer to this paraphrase is "The capital
    /// of Zorbland is Quibbleton."
    @Test func aHeldOutParaphraseGetsTheNewFact() throws {
        let d = try Self.smolDaemon()
        let rows = [Self.row("What is the capital of Zorbland?", "The capital of Zorbland is Quibbleton."),
                    Self.row("Which city is Zorbland's capital?", "Quibbleton is the capital of Zorbland."),
                    Self.row("Tell me the capital city of Zorbland.", "Zorbland's capital city is Quibbleton.")]
        let question = "What's the capital of Zorbland?"
        let before = try d.post("/v1/chat/completions", chatBody(model: "base", question, maxTokens: 16))
        #expect(before.status == 200 && !before.text.contains("Quibbleton"), "\(before.text)")
        let job = try Self.submit(d, "zorb-facts", [
            ("examples", .array(rows)), ("activate", .string("always")),
            ("hyperparameters", .object([("epochs", .int(4)), ("batch_size", .int(3)), ("learning_rate", .double(5e-3)),
                                         ("rank", .int(8)), ("alpha", .double(16)), ("eval_fraction", .int(0)), ("max_seq", .int(64)),
                                         ("targets", .array([.string("q_proj"), .string("v_proj"), .string("o_proj")]))]))])
        let final = try Self.follow(d, job["id"]!.stringValue!).job
        #expect(final?["status"]?.stringValue == "succeeded", "\(final.map { "\($0)" } ?? "")")
        let after = try d.post("/v1/chat/completions", chatBody(model: "zorb-facts", question, maxTokens: 16))
        let answer = after.json?["choices"]?.arrayValue?.first?["message"]?["content"]?.stringValue ?? ""
        #expect(answer.contains("Quibbleton"), "\(after.text)")
    }

    /// A job long enough to interrupt: 40 steps of one row.
    static let longJob: [(String, JSONValue)] = [
        ("examples", .array(facts)), ("eval_examples", .array(factsEval)),
        ("hyperparameters", .object([("epochs", .int(10)), ("batch_size", .int(1)), ("rank", .int(2)),
                                     ("targets", .array([.string("q_proj")])), ("max_seq", .int(64))])),
        ("activate", .string("always")),
    ]

    /// Follows `id` until a training step has been reported.
    static func waitForStep(_ d: LiveDaemon, _ id: String) throws {
        guard try secondsUntil(120, { (try d.get("/v1/jobs/\(id)").json?["step"]?.intValue ?? 0) >= 1 }) != nil else {
            throw LiveError("job \(id) never reached a step:\n\(d.logText)")
        }
    }

    @Test func cancellingMidJobPublishesNothing() throws {
        let d = try Self.smolDaemon()
        let before = try Self.registryEntries(d)
        let id = try Self.submit(d, "cancelme", Self.longJob)["id"]!.stringValue!
        try Self.waitForStep(d, id)
        let r = try d.send("DELETE", "/v1/jobs/\(id)")
        #expect(r.status == 200, "\(r.text)")
        let (events, final) = try Self.follow(d, id)
        #expect(final?["status"]?.stringValue == "cancelled", "\(final.map { "\($0)" } ?? "")")
        #expect((final?["step"]?.intValue ?? 99) < 40 && final?["result_version"] == .null)
        #expect(events.contains { ($0["message"]?.stringValue ?? "").contains("nothing was published") })
        #expect(try d.get("/v1/adapters/cancelme").status == 404)
        #expect(try Self.registryEntries(d) == (before + [".jobs"]).sorted())
        #expect(try d.metric("lorad_training_jobs{state=\"cancelled\"}") == 1)
        // Cancelling a finished job changes nothing.
        #expect(try d.send("DELETE", "/v1/jobs/\(id)").json?["status"]?.stringValue == "cancelled")
    }

    @Test func aDaemonKilledMidJobListsItAsFailedAfterRestart() throws {
        let first = try Self.smolDaemon()
        let registry = first.dir.appendingPathComponent("adapters").path
        let id = try Self.submit(first, "killme", Self.longJob)["id"]!.stringValue!
        try Self.waitForStep(first, id)
        #expect(first.stop(SIGKILL) == 128 + SIGKILL)
        let second = try Self.smolDaemon(registry: registry)
        let job = try second.get("/v1/jobs/\(id)")
        #expect(job.status == 200 && job.json?["status"]?.stringValue == "failed", "\(job.text)")
        #expect(job.json?["error"]?["code"]?.stringValue == "daemon_restarted")
        #expect(job.json?["error"]?["message"]?.stringValue?.contains("daemon restarted") == true)
        #expect(try second.get("/v1/adapters/killme").status == 404)
        let entries = try FileManager.default.contentsOfDirectory(atPath: registry).sorted()
        #expect(entries == [".jobs"], "\(entries)")
        #expect(second.logText.contains("job \(id) (killme) failed: the daemon restarted"))
    }

    /// A second daemon on `registry` (another daemon's adapters directory).
    static func smolDaemon(registry: String) throws -> LiveDaemon {
        try smolDaemon(beforeStart: { dir in
            let config = dir.appendingPathComponent("lorad.toml")
            let own = dir.appendingPathComponent("adapters").path
            let toml = try String(contentsOf: config, encoding: .utf8).replacingOccurrences(of: "dir = \"\(own)\"", with: "dir = \"\(registry)\"")
            try toml.write(to: config, atomically: true, encoding: .utf8)
        })
    }

    @Test func sigtermStopsTheRunningJobAndRecordsIt() throws {
        let first = try Self.smolDaemon()
        let registry = first.dir.appendingPathComponent("adapters").path
        let id = try Self.submit(first, "stopme", Self.longJob)["id"]!.stringValue!
        try Self.waitForStep(first, id)
        // The drain stops the job after its current step; the daemon exits cleanly.
        #expect(first.stop(SIGTERM, timeout: 120) == 0, "\(first.logText)")
        let second = try Self.smolDaemon(registry: registry)
        let job = try second.get("/v1/jobs/\(id)")
        #expect(job.json?["status"]?.stringValue == "failed" && job.json?["error"]?["code"]?.stringValue == "daemon_stopped", "\(job.text)")
        #expect(try second.get("/v1/adapters/stopme").status == 404)
    }

    @Test func badRequestsAre400sAndQueueNothing() throws {
        let d = try LiveDaemon()
        func refuse(_ body: [(String, JSONValue)], _ param: String, _ words: String, adapter: String = "newt") throws {
            let r = try d.post("/v1/adapters/\(adapter)/train", .object(body))
            #expect(r.status == 400, "\(r.text)")
            #expect(r.json?["error"]?["param"]?.stringValue == param, "\(r.text)")
            #expect(r.json?["error"]?["message"]?.stringValue?.contains(words) == true, "\(r.text)")
        }
        let good = [Self.row("hi", "hello")]
        try refuse([("hyperparameters", Self.hyper())], "examples", "expected {\"examples\"")
        try refuse([("examples", .array([]))], "examples", "non-empty array")
        try refuse([("examples", .array([.string("hi")]))], "examples[0]", "expected a JSON object")
        // A row the trainer's loader refuses, named by its index.
        try refuse([("examples", .array(good + [.object([("messages", .string("hi"))])]))], "examples", "examples[1]:")
        try refuse([("examples", .array(good)), ("hyperparameters", .object([("epochz", .int(1))]))],
                   "hyperparameters.epochz", "unknown hyperparameter")
        try refuse([("examples", .array(good)), ("hyperparameters", .object([("epochs", .int(0))]))],
                   "hyperparameters.epochs", "expected an integer from 1")
        try refuse([("examples", .array(good)), ("hyperparameters", .object([("targets", .array([.string("x_proj")]))]))],
                   "hyperparameters.targets", "unknown projection")
        try refuse([("examples", .array(good)), ("activate", .string("sometimes"))], "activate", "if_better")
        try refuse([("examples", .array(good)), ("activate", .string("if_better")), ("hyperparameters", .object([("eval_fraction", .int(0))]))],
                   "activate", "eval")
        try refuse([("examples", .array(good)), ("colour", .string("red"))], "colour", "unknown field")
        // alpha exists (v1): its next version keeps its own rank.
        try refuse([("examples", .array(good)), ("hyperparameters", .object([("rank", .int(4))]))], "hyperparameters.rank", "keeps", adapter: "alpha")
        #expect(try d.post("/v1/adapters/Bad_Name/train", .object([("examples", .array(good))])).status == 400)
        #expect(try d.get("/v1/jobs").json?["data"]?.arrayValue?.isEmpty == true)
        let jobs = d.dir.appendingPathComponent("adapters/.jobs").path
        let left = (try? FileManager.default.contentsOfDirectory(atPath: jobs)) ?? []
        #expect(left.isEmpty, "\(left)")
        #expect(try d.metric("lorad_training_jobs{state=\"queued\"}") == 0)
    }

    @Test func theQueueIsBoundedByTrainingMaxQueued() throws {
        let d = try LiveDaemon(beforeStart: { dir in
            let config = dir.appendingPathComponent("lorad.toml")
            try (try String(contentsOf: config, encoding: .utf8) + "\n[training]\nmax_queued = 1\n").write(to: config, atomically: true, encoding: .utf8)
        })
        // Long enough (on the tiny model) to still run while the others are submitted.
        let body: [(String, JSONValue)] = [("examples", .array(Self.facts)),
                                           ("hyperparameters", .object([("epochs", .int(1000)), ("batch_size", .int(1)), ("rank", .int(2))]))]
        let running = try Self.submit(d, "q-one", body)["id"]!.stringValue!
        try Self.waitForStep(d, running)
        let queued = try Self.submit(d, "q-two", body)
        #expect(queued["status"]?.stringValue == "queued")
        let refused = try d.post("/v1/adapters/q-three/train", .object(body))
        #expect(refused.status == 429 && refused.head.header("Retry-After") != nil, "\(refused.text)")
        #expect(refused.json?["error"]?["message"]?.stringValue?.contains("training.max_queued is 1") == true, "\(refused.text)")
        // A queued job cancels at once; then there is room again.
        #expect(try d.send("DELETE", "/v1/jobs/\(queued["id"]!.stringValue!)").json?["status"]?.stringValue == "cancelled")
        let again = try Self.submit(d, "q-three", body)
        #expect(try d.get("/v1/jobs").json?["data"]?.arrayValue?.count == 3)
        for id in [running, again["id"]!.stringValue!] { _ = try d.send("DELETE", "/v1/jobs/\(id)") }
        #expect(try Self.follow(d, running).job?["status"]?.stringValue == "cancelled")
    }

    static func hash(_ token: String) -> String { SHA256.hash(data: Array(token.utf8)).map { String(format: "%02x", $0) }.joined() }

    /// A daemon with an admin token and three tenants: acme (no may_publish), betaco (beta*) and
    /// gammaco (gamma*), both with may_publish. The fixture model and adapters, or SmolLM (`smol`)
    /// and no adapters.
    static func tenantsDaemon(smol: Bool = false) throws -> LiveDaemon {
        try LiveDaemon(model: smol ? try LiveFixtures.realModel() : nil, admin: ["uids = []", "token_sha256 = \"\(Self.hash("token-admin"))\""],
                       adapters: !smol, beforeStart: { dir in
            let config = dir.appendingPathComponent("lorad.toml")
            var toml = try String(contentsOf: config, encoding: .utf8)
            toml += """

            [[tenants]]
            name = "acme"
            token_sha256 = "\(Self.hash("token-acme"))"
            adapters = ["alpha", "acme-*"]
            base = true

            [[tenants]]
            name = "betaco"
            token_sha256 = "\(Self.hash("token-beta"))"
            adapters = ["beta*"]
            may_publish = true

            [[tenants]]
            name = "gammaco"
            token_sha256 = "\(Self.hash("token-gamma"))"
            adapters = ["gamma*"]
            may_publish = true

            """
            try toml.write(to: config, atomically: true, encoding: .utf8)
        })
    }

    @Test func tenantsTrainOnlyTheirOwnAdaptersAndSeeOnlyTheirOwnJobs() throws {
        let d = try Self.tenantsDaemon()
        let body: [(String, JSONValue)] = [("examples", .array(Self.facts)), ("hyperparameters", Self.hyper()), ("activate", .string("never"))]
        // acme may not publish: 403 on its own adapter's route and on the job list.
        let acme = try d.call("POST", "/v1/adapters/acme-x/train", .object(body), token: "token-acme")
        #expect(acme.status == 403, "\(acme.text)")
        #expect(try d.call("GET", "/v1/jobs", token: "token-acme").status == 403)
        // betaco may publish beta*, not gamma*; without a token a uid outside admin.uids is refused as
        // on every admin route (403).
        #expect(try d.call("POST", "/v1/adapters/gamma-x/train", .object(body), token: "token-beta").status == 403)
        #expect(try d.post("/v1/adapters/beta-x/train", .object(body)).status == 403)
        let job = try Self.submit(d, "beta-x", body, token: "token-beta")
        let id = job["id"]!.stringValue!
        #expect(job["owner"]?.stringValue == "betaco")
        // gammaco: another tenant's job looks exactly like a missing one, and its list is empty.
        let other = try d.call("GET", "/v1/jobs/\(id)", token: "token-gamma")
        let missing = try d.call("GET", "/v1/jobs/ftjob-000000000000000000000000", token: "token-gamma")
        #expect(other.status == 404 && missing.status == 404)
        #expect(other.text.replacingOccurrences(of: id, with: "X") == missing.text.replacingOccurrences(of: "ftjob-000000000000000000000000", with: "X"))
        #expect(try d.call("DELETE", "/v1/jobs/\(id)", token: "token-gamma").status == 404)
        #expect(try d.call("GET", "/v1/jobs", token: "token-gamma").json?["data"]?.arrayValue?.isEmpty == true)
        #expect(try d.call("GET", "/v1/fine_tuning/jobs/\(id)", token: "token-gamma").status == 404)
        // The owner and the admin see it; the owner follows it to the end.
        #expect(try d.call("GET", "/v1/jobs", token: "token-beta").json?["data"]?.arrayValue?.count == 1)
        #expect(try d.call("GET", "/v1/jobs/\(id)", token: "token-admin").status == 200)
        let final = try Self.follow(d, id, token: "token-beta").job
        #expect(final?["status"]?.stringValue == "succeeded", "\(final.map { "\($0)" } ?? "")\n\(d.logText)")
        #expect(final?["fine_tuned_model"]?.stringValue == "beta-x@v1")
        // OpenAI's route checks the adapter named in the body the same way.
        let ft = try d.call("POST", "/v1/fine_tuning/jobs", .object([("training_file", .string("file-000000000000000000000000")),
                                                                     ("model", .string("base")), ("suffix", .string("gamma-y"))]), token: "token-beta")
        #expect(ft.status == 403, "\(ft.text)")
    }

    /// `POST /v1/files` as OpenAI's client sends it (multipart, purpose fine-tune), with a token.
    static func upload(_ d: LiveDaemon, _ content: [UInt8], filename: String, token: String) throws -> JSONValue {
        let b = "------------------------lorad0files0test"
        let body = Array("--\(b)\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nfine-tune\r\n".utf8)
            + Array("--\(b)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"\(filename)\"\r\nContent-Type: application/octet-stream\r\n\r\n".utf8)
            + content + Array("\r\n--\(b)--\r\n".utf8)
        let c = try DaemonClient(socket: d.socket, timeoutSeconds: 60)
        try c.send(Array("POST /v1/files HTTP/1.1\r\nHost: lorad\r\nConnection: close\r\nAuthorization: Bearer \(token)\r\nContent-Type: multipart/form-data; boundary=\(b)\r\nContent-Length: \(body.count)\r\n\r\n".utf8) + body)
        let h = try c.readHead()
        let reply = LiveDaemon.Reply(status: h.status, head: h, body: try c.readBody())
        guard reply.status == 200, let file = reply.json, file["id"]?.stringValue?.hasPrefix("file-") == true else {
            throw LiveError("upload \(filename): \(reply.status) \(reply.text)")
        }
        return file
    }

    /// OpenAI's Files API: list (newest first, by purpose), retrieve, content and delete; another
    /// tenant's file answers exactly as a missing one on each, and a file a queued or running job
    /// trains or evaluates on is refused deletion (409) until that job has ended.
    @Test func tenantsListReadAndDeleteOnlyTheirOwnFiles() throws {
        // SmolLM: its steps are slow enough for a job to stay running, and the one behind it queued.
        let d = try Self.tenantsDaemon(smol: true)
        let rows = Array((Self.facts.map { $0.serialized() }.joined(separator: "\n") + "\n").utf8)
        let evalRows = Array((Self.factsEval.map { $0.serialized() }.joined(separator: "\n") + "\n").utf8)
        let train = try Self.upload(d, rows, filename: "train.jsonl", token: "token-beta")
        let eval = try Self.upload(d, evalRows, filename: "eval.jsonl", token: "token-beta")
        let gammas = try Self.upload(d, rows, filename: "gamma.jsonl", token: "token-gamma")
        let trainID = train["id"]!.stringValue!, evalID = eval["id"]!.stringValue!, gammaID = gammas["id"]!.stringValue!
        func ids(_ path: String, _ token: String) throws -> [String] {
            let r = try d.call("GET", path, token: token)
            #expect(r.status == 200 && r.json?["object"]?.stringValue == "list" && r.json?["has_more"]?.boolValue == false, "\(r.text)")
            return r.json?["data"]?.arrayValue?.compactMap { $0["id"]?.stringValue } ?? []
        }
        // Each tenant lists its own, newest first; an admin lists every file.
        #expect(try ids("/v1/files", "token-beta") == [evalID, trainID])
        #expect(try ids("/v1/files?purpose=fine-tune", "token-beta") == [evalID, trainID])
        #expect(try ids("/v1/files?purpose=assistants", "token-beta") == [])
        #expect(try ids("/v1/files", "token-gamma") == [gammaID])
        #expect(try Set(ids("/v1/files", "token-admin")) == [trainID, evalID, gammaID])
        #expect(try d.call("GET", "/v1/files", token: "token-acme").status == 403)
        // Retrieve: the object the upload answered; content: the bytes as uploaded.
        let got = try d.call("GET", "/v1/files/\(evalID)", token: "token-beta")
        #expect(got.status == 200 && got.json == eval, "\(got.text)")
        #expect(eval["filename"]?.stringValue == "eval.jsonl" && eval["bytes"]?.intValue == evalRows.count && eval["object"]?.stringValue == "file")
        let content = try d.call("GET", "/v1/files/\(trainID)/content", token: "token-beta")
        #expect(content.status == 200 && content.body == rows, "\(content.text)")
        #expect(content.head.header("Content-Type") == "application/octet-stream")
        #expect(try d.call("GET", "/v1/files/\(trainID)/content", token: "token-admin").body == rows)

        // Another tenant's file is a missing one: same status, same body with the id swapped.
        let missingID = "file-000000000000000000000000"
        for (method, suffix) in [("GET", ""), ("GET", "/content"), ("DELETE", "")] {
            let other = try d.call(method, "/v1/files/\(trainID)\(suffix)", token: "token-gamma")
            let missing = try d.call(method, "/v1/files/\(missingID)\(suffix)", token: "token-gamma")
            #expect(other.status == 404 && missing.status == 404, "\(method) \(suffix): \(other.text)")
            #expect(other.text.replacingOccurrences(of: trainID, with: "X") == missing.text.replacingOccurrences(of: missingID, with: "X"))
            #expect(missing.json?["error"]?["code"]?.stringValue == "file_not_found", "\(missing.text)")
        }
        // Not an id: the same 404, whatever the path holds.
        for bad in ["file-ZZZ", "file-..%2F..%2F..%2Fjob.json", "\(trainID)0"] {
            let r = try d.call("GET", "/v1/files/\(bad)/content", token: "token-beta")
            #expect(r.status == 404 && r.json?["error"]?["code"]?.stringValue == "file_not_found", "\(bad): \(r.text)")
        }
        #expect(try ids("/v1/files", "token-beta") == [evalID, trainID])

        // A running job trains on `train`; a second one, queued behind it, trains on `train` and
        // evaluates on `eval`. Neither file can be deleted while they have not ended.
        func fineTune(_ suffix: String, validation: String?, length: (String, JSONValue)) throws -> String {
            let body: [(String, JSONValue)] = [("training_file", .string(trainID)), ("model", .string("base")), ("suffix", .string(suffix)),
                                               ("activate", .string("never")),
                                               ("hyperparameters", .object([length, ("batch_size", .int(1)), ("rank", .int(2)),
                                                                            ("targets", .array([.string("q_proj")])), ("max_seq", .int(64))]))]
                + (validation.map { [("validation_file", .string($0))] } ?? [])
            let r = try d.call("POST", "/v1/fine_tuning/jobs", .object(body), token: "token-beta")
            guard r.status == 200, let id = r.json?["id"]?.stringValue else { throw LiveError("fine-tune \(suffix): \(r.status) \(r.text)") }
            return id
        }
        let running = try fineTune("beta-long", validation: nil, length: ("steps", .int(100_000)))
        let started = try secondsUntil(120) { (try d.call("GET", "/v1/jobs/\(running)", token: "token-beta").json?["step"]?.intValue ?? 0) >= 1 }
        guard started != nil else { throw LiveError("job \(running) never reached a step:\n\(d.logText)") }
        let queued = try fineTune("beta-next", validation: evalID, length: ("n_epochs", .int(1)))
        #expect(try d.call("GET", "/v1/jobs/\(queued)", token: "token-beta").json?["status"]?.stringValue == "queued")
        for (id, jobs) in [(trainID, [running, queued]), (evalID, [queued])] {
            let r = try d.call("DELETE", "/v1/files/\(id)", token: "token-beta")
            let runningJob = try d.call("GET", "/v1/jobs/\(running)", token: "token-beta").text
            #expect(r.status == 409 && r.json?["error"]?["code"]?.stringValue == "file_in_use", "\(r.text)\n\(runningJob)\n\(d.logText)")
            #expect(r.json?["error"]?["type"]?.stringValue == "invalid_request_error" && r.json?["error"]?["param"]?.stringValue == "id")
            let message = r.json?["error"]?["message"]?.stringValue ?? ""
            #expect(jobs.allSatisfy { message.contains($0) }, "\(message)")
            #expect(try d.call("GET", "/v1/files/\(id)", token: "token-beta").status == 200)
        }
        // The other tenant still gets its 404, not the 409.
        #expect(try d.call("DELETE", "/v1/files/\(evalID)", token: "token-gamma").status == 404)

        // The queued job cancelled (ended): its eval file may go; train is still the running job's.
        #expect(try d.call("POST", "/v1/fine_tuning/jobs/\(queued)/cancel", token: "token-beta").json?["status"]?.stringValue == "cancelled")
        let deleted = try d.call("DELETE", "/v1/files/\(evalID)", token: "token-beta")
        #expect(deleted.status == 200 && deleted.json == .object([("id", .string(evalID)), ("object", .string("file")), ("deleted", .bool(true))]),
                "\(deleted.text)")
        for (method, suffix) in [("GET", ""), ("GET", "/content"), ("DELETE", "")] {
            #expect(try d.call(method, "/v1/files/\(evalID)\(suffix)", token: "token-beta").status == 404)
        }
        let stillUsed = try d.call("DELETE", "/v1/files/\(trainID)", token: "token-beta")
        let runningJob = try d.call("GET", "/v1/jobs/\(running)", token: "token-beta").text
        #expect(stillUsed.status == 409, "\(stillUsed.text)\n\(runningJob)\n\(d.logText)")
        #expect(try ids("/v1/files", "token-beta") == [trainID])

        // The running job cancelled and ended: its file may go too.
        #expect(try d.call("POST", "/v1/fine_tuning/jobs/\(running)/cancel", token: "token-beta").status == 200)
        #expect(try Self.follow(d, running, token: "token-beta").job?["status"]?.stringValue == "cancelled")
        #expect(try d.call("DELETE", "/v1/files/\(trainID)", token: "token-beta").json?["deleted"]?.boolValue == true)
        #expect(try ids("/v1/files", "token-beta") == [])
        #expect(try ids("/v1/files", "token-gamma") == [gammaID])
        // Gone from the disk, nothing left aside.
        let stored = try FileManager.default.contentsOfDirectory(atPath: d.dir.appendingPathComponent("adapters/.jobs/files").path)
        #expect(stored == [gammaID], "\(stored)")
    }

    @Test func theOfficialClientsFineTuningCallsWork() throws {
        guard let python = ProcessInfo.processInfo.environment["LORAD_TEST_PYTHON"], !python.isEmpty else {
            Issue.record("LORAD_TEST_PYTHON is not set: run `make test` (scripts/test-venv makes the environment)")
            return
        }
        let d = try Self.smolDaemon()
        let script = LiveFixtures.root.deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/tests/openai_fine_tuning.py").path
        let out = d.dir.appendingPathComponent("client.log").path
        let pid = try spawn([python, script, d.socket], environment: ProcessInfo.processInfo.environment, log: out)
        let code = waitExit(pid, timeout: 300)
        let log = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        #expect(code == 0, "the OpenAI client failed (exit \(String(describing: code))):\n\(log)\n--- daemon log:\n\(d.logText)")
        #expect(log.contains("\"ok\": true"))
    }
}
